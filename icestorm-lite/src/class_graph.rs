//! Finds chains of sliced class instances in an event's parameters without knowing their types
//! (`IceStorm.CheckClassGraphs`).
//!
//! ZeroC 3.7's decoder slices an instance of an unknown type by reading its indirection table,
//! and reads every instance of that table before it counts the depth `Ice.ClassGraphDepthMax`
//! bounds: a chain of sliced instances nested through their indirection tables recurses once per
//! instance, and a chain some tens of thousands deep overflows the stack of a ZeroC subscriber
//! (C++ or Python) that decodes it, even as a tagged parameter it does not expect. The broker
//! does not know the event's types, so every byte that could start an inline instance
//! (`1`, then a slice header with a slice size) is tried as one, and the depth of the chain that
//! starts there measured; results are remembered per position so each is parsed once.
//!
//! Only encoding 1.1 has indirection tables; 1.0 parameters are not scanned.

use std::collections::HashMap;

const TYPE_ID_MASK: u8 = 0x03;
const TYPE_ID_STRING: u8 = 0x01;
const HAS_INDIRECTION_TABLE: u8 = 0x08;
const HAS_SLICE_SIZE: u8 = 0x10;
const IS_LAST_SLICE: u8 = 0x20;
const UNUSED_FLAGS: u8 = 0xC0;

/// Why an event's class graph is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A chain of sliced instances deeper than the limit.
    TooDeep(usize),
    /// So many overlapping candidate instances that checking them costs more than a pass or
    /// two over the bytes: refused rather than let one event take the broker's time.
    TooComplex,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooDeep(max) => write!(
                f,
                "the event holds a chain of sliced class instances deeper than \
                 Ice.ClassGraphDepthMax ({max}), which ZeroC subscribers cannot decode \
                 (IceStorm.CheckClassGraphs)"
            ),
            Refusal::TooComplex => write!(
                f,
                "the event's class instances are too entangled to check \
                 (IceStorm.CheckClassGraphs)"
            ),
        }
    }
}

/// What starts at a position.
#[derive(Debug, Clone, Copy)]
enum Found {
    /// Not an instance that could be sliced.
    Nothing,
    /// An instance whose chain is `depth` deep, ending at `end`.
    Instance { depth: usize, end: usize },
}

struct Scan<'a> {
    body: &'a [u8],
    max: usize,
    seen: HashMap<usize, Found>,
    /// Bytes read so far, against `budget`.
    work: usize,
    budget: usize,
}

/// Checks a parameter encapsulation (header included): `Err` when it holds a chain of sliced
/// class instances deeper than `max`.
pub fn check(encaps: &[u8], max: usize) -> Result<(), Refusal> {
    let Some(header) = encaps.get(..6) else {
        return Ok(());
    };
    if header[4..6] != [1, 1] {
        return Ok(());
    }
    let size = i32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let end = usize::try_from(size).unwrap_or(0).clamp(6, encaps.len());
    let body = &encaps[6..end];
    let mut scan = Scan {
        body,
        max,
        seen: HashMap::new(),
        work: 0,
        budget: body.len().saturating_mul(4).saturating_add(4096),
    };
    for (start, _) in body.iter().enumerate().filter(|(_, b)| **b == 1) {
        scan.instance(start, 1)?;
    }
    Ok(())
}

impl Scan<'_> {
    /// The chain that starts with an instance marker (`1`) at `at`, `level` deep in the chain
    /// being measured.
    fn instance(&mut self, at: usize, level: usize) -> Result<Found, Refusal> {
        if level > self.max {
            return Err(Refusal::TooDeep(self.max));
        }
        if let Some(found) = self.seen.get(&at) {
            return match *found {
                Found::Instance { depth, .. } if level + depth - 1 > self.max => {
                    Err(Refusal::TooDeep(self.max))
                }
                found => Ok(found),
            };
        }
        let found = self.parse(at + 1, level)?.unwrap_or(Found::Nothing);
        self.seen.insert(at, found);
        Ok(found)
    }

    /// Reads the slices of an instance from `pos`; `None` when they are not a sliceable
    /// instance.
    fn parse(&mut self, mut pos: usize, level: usize) -> Result<Option<Found>, Refusal> {
        let mut depth = 1;
        loop {
            let Some(&flags) = self.body.get(pos) else {
                return Ok(None);
            };
            pos += 1;
            if flags & UNUSED_FLAGS != 0 || flags & HAS_SLICE_SIZE == 0 {
                return Ok(None);
            }
            match flags & TYPE_ID_MASK {
                0 => {}
                TYPE_ID_STRING => {
                    let Some((len, next)) = self.size(pos)? else {
                        return Ok(None);
                    };
                    pos = next.saturating_add(len);
                }
                _ => {
                    let Some((_, next)) = self.size(pos)? else {
                        return Ok(None);
                    };
                    pos = next;
                }
            }
            let Some(bytes) = self.body.get(pos..pos.saturating_add(4)) else {
                return Ok(None);
            };
            let slice_size = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let Some(slice_end) = usize::try_from(slice_size)
                .ok()
                .filter(|s| *s >= 4)
                .and_then(|s| pos.checked_add(s))
                .filter(|e| *e <= self.body.len())
            else {
                return Ok(None);
            };
            pos = slice_end;
            if flags & HAS_INDIRECTION_TABLE != 0 {
                let Some((entries, next)) = self.size(pos)? else {
                    return Ok(None);
                };
                if entries == 0 || entries > self.body.len() - next {
                    return Ok(None);
                }
                pos = next;
                for _ in 0..entries {
                    let Some((index, next)) = self.size(pos)? else {
                        return Ok(None);
                    };
                    match index {
                        0 => return Ok(None),
                        1 => match self.instance(pos, level + 1)? {
                            Found::Nothing => return Ok(None),
                            Found::Instance { depth: d, end } => {
                                depth = depth.max(d + 1);
                                pos = end;
                            }
                        },
                        _ => pos = next,
                    }
                }
            }
            if flags & IS_LAST_SLICE != 0 {
                return Ok(Some(Found::Instance { depth, end: pos }));
            }
        }
    }

    /// Reads a size at `pos`: its value and the position after it (`None` when there is none).
    fn size(&mut self, pos: usize) -> Result<Option<(usize, usize)>, Refusal> {
        self.work += 1;
        if self.work > self.budget {
            return Err(Refusal::TooComplex);
        }
        Ok(match self.body.get(pos) {
            None => None,
            Some(255) => self.body.get(pos + 1..pos + 5).and_then(|b| {
                let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                Some((usize::try_from(v).ok()?, pos + 5))
            }),
            Some(&b) => Some((usize::from(b), pos + 1)),
        })
    }
}

/// Builds a 1.1 encapsulation holding `prefix` and then a chain of `depth` sliced instances of
/// unknown (compact id 99) types, each the only entry of the indirection table of the one before:
/// the event [`check`] refuses, for tests of a deployment.
pub fn sliced_chain(prefix: &[u8], depth: usize) -> Vec<u8> {
    let mut body = prefix.to_vec();
    for level in 0..depth {
        let last = level + 1 == depth;
        let mut flags = 0x03 | HAS_SLICE_SIZE | IS_LAST_SLICE;
        if !last {
            flags |= HAS_INDIRECTION_TABLE;
        }
        body.extend_from_slice(&[1, flags, 99]);
        // The slice's members: one reference, index 1 of the table (or none for the last).
        if last {
            body.extend_from_slice(&4i32.to_le_bytes());
        } else {
            body.extend_from_slice(&5i32.to_le_bytes());
            body.extend_from_slice(&[1, 1]);
        }
    }
    let mut encaps = ((body.len() + 6) as i32).to_le_bytes().to_vec();
    encaps.extend_from_slice(&[1, 1]);
    encaps.extend_from_slice(&body);
    encaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_up_to_the_limit_pass_and_deeper_ones_are_refused() {
        for prefix in [&b""[..], b"\x05hello", b"\x01\x01\x01\x01"] {
            assert_eq!(check(&sliced_chain(prefix, 100), 100), Ok(()));
            assert_eq!(
                check(&sliced_chain(prefix, 101), 100),
                Err(Refusal::TooDeep(100))
            );
        }
        assert_eq!(
            check(&sliced_chain(b"", 100_000), 100),
            Err(Refusal::TooDeep(100))
        );
    }

    #[test]
    fn ordinary_bytes_and_other_encodings_pass() {
        let mut seed: u32 = 7;
        let mut body = vec![0u8; 6];
        for _ in 0..200_000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            body.push((seed >> 16) as u8 % 4);
        }
        let len = body.len() as i32;
        body[..4].copy_from_slice(&len.to_le_bytes());
        body[4..6].copy_from_slice(&[1, 1]);
        assert_eq!(check(&body, 100), Ok(()));
        let mut chain = sliced_chain(b"", 1000);
        chain[5] = 0;
        assert_eq!(check(&chain, 100), Ok(()), "1.0 is not scanned");
        assert_eq!(check(&[1, 1, 1], 100), Ok(()));
    }
}
