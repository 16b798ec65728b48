//! Placement: a consistent-hash ring with virtual nodes, as the seed describes. Each physical
//! node has `vnodes` points, at MD5(`"<node id>#<i>"`); a file's position is MD5 of its id
//! (its SHA-256, hex), and its replicas are the first R distinct physical nodes met going round
//! the ring from there. MD5 only spreads files; integrity is SHA-256's job.
//!
//! Every node computes the ring from the same replicated data (the catalog's live members), so
//! all agree on where a file belongs; when a node joins or leaves, only the files whose arcs it
//! gains or loses move.

use md5::{Digest, Md5};

/// A ring over some nodes.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    points: Vec<(u128, u64)>,
    nodes: usize,
}

fn position(text: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(text.as_bytes()).into())
}

impl Ring {
    /// The ring of `nodes` with `vnodes` points each.
    pub fn new(nodes: &[u64], vnodes: usize) -> Ring {
        let mut points = Vec::with_capacity(nodes.len() * vnodes.max(1));
        for node in nodes {
            for i in 0..vnodes.max(1) {
                points.push((position(&format!("{node}#{i}")), *node));
            }
        }
        points.sort_unstable();
        points.dedup_by_key(|p| p.0);
        let mut distinct = nodes.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        Ring {
            points,
            nodes: distinct.len(),
        }
    }

    /// The nodes that hold file `id`: `r` distinct nodes (fewer when the ring has fewer), in
    /// ring order.
    pub fn place(&self, id: &str, r: usize) -> Vec<u64> {
        let want = r.min(self.nodes);
        let mut out = Vec::with_capacity(want);
        if want == 0 {
            return out;
        }
        let start = self.points.partition_point(|p| p.0 < position(id));
        for k in 0..self.points.len() {
            let node = self.points[(start + k) % self.points.len()].1;
            if !out.contains(&node) {
                out.push(node);
                if out.len() == want {
                    break;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{:064x}", i as u128 * 7919))
            .collect()
    }

    #[test]
    fn placements_are_distinct_stable_and_spread() {
        let ring = Ring::new(&[1, 2, 3, 4, 5], 64);
        let mut load = [0usize; 6];
        for id in ids(5000) {
            let p = ring.place(&id, 3);
            assert_eq!(p.len(), 3);
            let mut d = p.clone();
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 3, "distinct nodes");
            assert_eq!(
                p,
                Ring::new(&[5, 4, 3, 2, 1], 64).place(&id, 3),
                "independent of the order of the members"
            );
            for n in p {
                load[n as usize] += 1;
            }
        }
        for (n, held) in load.iter().enumerate().skip(1) {
            assert!(
                (2000..=4000).contains(held),
                "node {n} holds {held} of 15000"
            );
        }
        assert_eq!(Ring::new(&[1, 2], 64).place("x", 3).len(), 2);
        assert!(Ring::new(&[], 64).place("x", 3).is_empty());
    }

    #[test]
    fn a_joining_node_takes_over_only_its_new_ranges() {
        let before = Ring::new(&[1, 2, 3, 4], 64);
        let after = Ring::new(&[1, 2, 3, 4, 5], 64);
        let mut moved = 0;
        for id in ids(4000) {
            let (b, a) = (before.place(&id, 3), after.place(&id, 3));
            // Every replica that moves, moves to the new node.
            for n in &a {
                if !b.contains(n) {
                    assert_eq!(*n, 5);
                    moved += 1;
                }
            }
        }
        // About 3/5 of the files get a replica on node 5.
        assert!((1800..=3000).contains(&moved), "{moved} replicas moved");
    }
}
