//! A node's replicas on disk (`Dispotify.DataDir`):
//!
//! - `files/<id>`: a verified replica (its SHA-256 is `id`), never written again;
//! - `files/<id>.sums`: the SHA-256 of each `CHUNK`-byte chunk of it (32 bytes each), so every
//!   read checks the chunks it sends;
//! - `staging/<id>`: a replica being received, moved into `files/` once verified whole.
//!
//! Files are read and written in chunks, never held whole in memory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// Size of the checked chunks of a replica (and of the chunks sent between nodes).
pub const CHUNK: usize = 256 * 1024;
/// Most bytes one call reads or writes: two chunks, so that a request or reply with its header
/// stays well under Ice's default `Ice.MessageSizeMax` (1024 KiB).
pub const MAX_TRANSFER: usize = 2 * CHUNK;

/// A failure of the replica store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No such replica (or staged replica).
    #[error("no replica of {0}")]
    NotFound(String),
    /// Bytes that do not hash to what they should.
    #[error("checksum mismatch: {0}")]
    Checksum(String),
    /// A bad request (id, offset, size).
    #[error("{0}")]
    Invalid(String),
    /// The disk failed.
    #[error("disk: {0}")]
    Io(#[from] std::io::Error),
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` is a SHA-256 in lowercase hex (and so safe as a file name).
pub fn valid_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_id(id: &str) -> Result<(), StorageError> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(StorageError::Invalid(format!(
            "`{}` is not a SHA-256 in hex",
            id.chars().take(80).collect::<String>()
        )))
    }
}

/// The SHA-256 of a file, read in chunks.
pub fn hash_file(path: &Path) -> Result<String, std::io::Error> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// The replica store of one node.
#[derive(Debug, Clone)]
pub struct Replicas {
    files: PathBuf,
    staging: PathBuf,
    /// Largest replica accepted.
    max_size: u64,
}

impl Replicas {
    /// Opens (or creates) the store under `dir`.
    pub fn open(dir: &Path, max_size: u64) -> Result<Replicas, StorageError> {
        let r = Replicas {
            files: dir.join("files"),
            staging: dir.join("staging"),
            max_size,
        };
        fs::create_dir_all(&r.files)?;
        fs::create_dir_all(&r.staging)?;
        Ok(r)
    }

    /// A staging path for a copy of `id` made on this node (the local replica of an upload),
    /// used by nothing else: `staging/<id>` belongs to the replica a peer pushes or this node
    /// pulls, which may be under way for the same content at the same time.
    pub fn scratch(&self, id: &str) -> PathBuf {
        self.staging.join(format!("{id}.{}.local", unique()))
    }

    /// Where the verified replica of `id` is.
    pub fn path(&self, id: &str) -> PathBuf {
        self.files.join(id)
    }

    fn sums_path(&self, id: &str) -> PathBuf {
        self.files.join(format!("{id}.sums"))
    }

    /// Whether a verified replica of `id` is here.
    pub fn has(&self, id: &str) -> bool {
        valid_id(id) && self.path(id).is_file() && self.sums_path(id).is_file()
    }

    /// The size of the replica of `id`.
    pub fn size(&self, id: &str) -> Result<u64, StorageError> {
        check_id(id)?;
        fs::metadata(self.path(id))
            .map(|m| m.len())
            .map_err(|_| StorageError::NotFound(id.to_string()))
    }

    /// The ids of the replicas held.
    pub fn inventory(&self) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.files)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if valid_id(&name) && self.sums_path(&name).is_file() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Starts (or resumes) receiving `id` of `size` bytes; returns the bytes already staged.
    pub fn begin(&self, id: &str, size: u64) -> Result<u64, StorageError> {
        check_id(id)?;
        if size > self.max_size {
            return Err(StorageError::Invalid(format!(
                "a replica of {size} bytes (at most {})",
                self.max_size
            )));
        }
        let path = self.staging.join(id);
        let staged = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if staged > size {
            fs::remove_file(&path)?;
            return Ok(0);
        }
        if staged == 0 {
            File::create(&path)?;
        }
        Ok(staged)
    }

    /// Adds `data` at `offset` of the staged replica `id`, after checking its hash; `size` is the
    /// replica's declared size.
    pub fn put(
        &self,
        id: &str,
        offset: u64,
        data: &[u8],
        sha256: &str,
        size: u64,
    ) -> Result<(), StorageError> {
        check_id(id)?;
        let path = self.staging.join(id);
        let staged = fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|_| StorageError::NotFound(id.to_string()))?;
        if offset != staged {
            return Err(StorageError::Invalid(format!(
                "a chunk at {offset} where {staged} was due"
            )));
        }
        if offset + data.len() as u64 > size || data.len() > MAX_TRANSFER {
            return Err(StorageError::Invalid(format!(
                "a chunk of {} bytes at {offset} passes the size {size}",
                data.len()
            )));
        }
        if hex(&Sha256::digest(data)) != sha256 {
            return Err(StorageError::Checksum(format!(
                "the chunk at {offset} of {id}"
            )));
        }
        let mut f = OpenOptions::new().append(true).open(&path)?;
        f.write_all(data)?;
        Ok(())
    }

    /// Verifies the staged replica `id` whole and keeps it (with its chunk sums).
    pub fn commit(&self, id: &str) -> Result<(), StorageError> {
        check_id(id)?;
        let path = self.staging.join(id);
        if !path.is_file() {
            return Err(StorageError::NotFound(id.to_string()));
        }
        self.adopt(id, &path)
    }

    /// Verifies the file at `source` (anywhere on this node's disk) against `id`, computes its
    /// chunk sums, and moves it into the store.
    pub fn adopt(&self, id: &str, source: &Path) -> Result<(), StorageError> {
        check_id(id)?;
        let mut f = File::open(source)?;
        let mut whole = Sha256::new();
        let mut sums = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = read_full(&mut f, &mut buf)?;
            if n == 0 {
                break;
            }
            whole.update(&buf[..n]);
            sums.extend_from_slice(&Sha256::digest(&buf[..n]));
            if n < CHUNK {
                break;
            }
        }
        let got = hex(&whole.finalize());
        if got != id {
            let _ = fs::remove_file(source);
            return Err(StorageError::Checksum(format!(
                "the file hashes to {got}, not {id}"
            )));
        }
        f.sync_all()?;
        // Two copies of the same content may be adopted at once (a local upload and a peer's
        // push): each writes its own sums, and the renames leave one verified replica.
        let sums_tmp = self.files.join(format!("{id}.sums.{}.tmp", unique()));
        let mut s = File::create(&sums_tmp)?;
        s.write_all(&sums)?;
        s.sync_all()?;
        fs::rename(source, self.path(id))?;
        fs::rename(&sums_tmp, self.sums_path(id))?;
        File::open(&self.files)?.sync_all()?;
        Ok(())
    }

    /// Reads up to `length` bytes of `id` from `offset`, checking every chunk it touches.
    pub fn read(&self, id: &str, offset: u64, length: usize) -> Result<Vec<u8>, StorageError> {
        check_id(id)?;
        let mut f =
            File::open(self.path(id)).map_err(|_| StorageError::NotFound(id.to_string()))?;
        let size = f.metadata()?.len();
        if offset > size {
            return Err(StorageError::Invalid(format!(
                "offset {offset} past the end ({size})"
            )));
        }
        let end = (offset + length as u64).min(size);
        let sums =
            fs::read(self.sums_path(id)).map_err(|_| StorageError::NotFound(id.to_string()))?;
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut chunk = offset / CHUNK as u64;
        let mut buf = vec![0u8; CHUNK];
        while chunk * (CHUNK as u64) < end {
            let start = chunk * CHUNK as u64;
            f.seek(SeekFrom::Start(start))?;
            let n = read_full(&mut f, &mut buf)?;
            let expected = sums
                .get(chunk as usize * 32..chunk as usize * 32 + 32)
                .ok_or_else(|| StorageError::Checksum(format!("{id}: chunk sums are short")))?;
            if Sha256::digest(&buf[..n]).as_slice() != expected {
                return Err(StorageError::Checksum(format!(
                    "chunk {chunk} of {id} on disk"
                )));
            }
            let from = offset.max(start) - start;
            let to = (end - start).min(n as u64);
            out.extend_from_slice(&buf[from as usize..to as usize]);
            chunk += 1;
        }
        Ok(out)
    }

    /// Re-hashes the replica `id` whole; false when it is corrupt (or its sums are).
    pub fn verify(&self, id: &str) -> Result<bool, StorageError> {
        let size = self.size(id)?;
        let mut offset = 0;
        while offset < size {
            match self.read(id, offset, CHUNK) {
                Ok(b) => offset += b.len().max(1) as u64,
                Err(StorageError::Checksum(_)) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(hash_file(&self.path(id))? == id)
    }

    /// Removes the replica `id`.
    pub fn drop_replica(&self, id: &str) -> Result<(), StorageError> {
        check_id(id)?;
        let _ = fs::remove_file(self.sums_path(id));
        match fs::remove_file(self.path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes staged replicas untouched for `age`; returns how many.
    pub fn collect_staging(&self, age: Duration) -> usize {
        collect_older(&self.staging, age)
    }
}

/// A number no other call in this process returns, for temporary file names.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Removes the files of `dir` not modified for `age`; returns how many.
pub fn collect_older(dir: &Path, age: Duration) -> usize {
    let mut n = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|d| d >= age);
        if old && fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

fn read_full(f: &mut File, buf: &mut [u8]) -> Result<usize, std::io::Error> {
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(n: usize) -> (Vec<u8>, String) {
        let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
        let id = hex(&Sha256::digest(&data));
        (data, id)
    }

    #[test]
    fn a_local_copy_and_a_pushed_replica_of_the_same_content_do_not_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let r = Replicas::open(dir.path(), 10 << 20).unwrap();
        let (data, id) = content(CHUNK + 10);
        // A peer starts pushing the content while this node copies its own upload of it.
        assert_eq!(r.begin(&id, data.len() as u64).unwrap(), 0);
        let local = r.scratch(&id);
        assert_ne!(local, r.scratch(&id), "each local copy has its own file");
        std::fs::write(&local, &data).unwrap();
        // The push starting over (as `begin` does for a new transfer) leaves the copy whole.
        std::fs::remove_file(dir.path().join("staging").join(&id)).unwrap();
        assert_eq!(r.begin(&id, data.len() as u64).unwrap(), 0);
        // Both adopt: the local copy now, the pushed replica once complete; one replica stays.
        r.adopt(&id, &local).unwrap();
        r.put(
            &id,
            0,
            &data,
            &hex(&Sha256::digest(&data)),
            data.len() as u64,
        )
        .unwrap();
        r.commit(&id).unwrap();
        assert!(r.has(&id));
        assert_eq!(r.read(&id, 0, data.len()).unwrap(), data);
        assert_eq!(r.inventory().unwrap(), vec![id]);
    }

    #[test]
    fn replicas_are_received_in_checked_chunks_and_read_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let r = Replicas::open(dir.path(), 10 << 20).unwrap();
        let (data, id) = content(CHUNK * 2 + 1000);
        assert_eq!(r.begin(&id, data.len() as u64).unwrap(), 0);
        let first = &data[..CHUNK];
        assert!(matches!(
            r.put(&id, 0, first, &"0".repeat(64), data.len() as u64),
            Err(StorageError::Checksum(_))
        ));
        r.put(
            &id,
            0,
            first,
            &hex(&Sha256::digest(first)),
            data.len() as u64,
        )
        .unwrap();
        assert!(matches!(
            r.put(
                &id,
                5,
                first,
                &hex(&Sha256::digest(first)),
                data.len() as u64
            ),
            Err(StorageError::Invalid(_))
        ));
        // Resuming reports what is staged.
        assert_eq!(r.begin(&id, data.len() as u64).unwrap(), CHUNK as u64);
        let rest = &data[CHUNK..];
        for (i, part) in rest.chunks(CHUNK).enumerate() {
            r.put(
                &id,
                (CHUNK * (i + 1)) as u64,
                part,
                &hex(&Sha256::digest(part)),
                data.len() as u64,
            )
            .unwrap();
        }
        r.commit(&id).unwrap();
        assert!(r.has(&id));
        assert_eq!(r.inventory().unwrap(), vec![id.clone()]);
        assert_eq!(r.read(&id, 100, CHUNK * 3).unwrap(), data[100..]);
        assert_eq!(
            r.read(&id, CHUNK as u64 - 10, 20).unwrap(),
            data[CHUNK - 10..CHUNK + 10]
        );
        assert!(r.verify(&id).unwrap());

        // A flipped byte on disk is found by a read of its chunk and by verify.
        let mut bytes = fs::read(r.path(&id)).unwrap();
        bytes[CHUNK + 5] ^= 0x40;
        fs::write(r.path(&id), &bytes).unwrap();
        assert!(r.read(&id, 0, 100).is_ok(), "other chunks still read");
        assert!(matches!(
            r.read(&id, CHUNK as u64, 100),
            Err(StorageError::Checksum(_))
        ));
        assert!(!r.verify(&id).unwrap());
        r.drop_replica(&id).unwrap();
        assert!(!r.has(&id));
    }

    #[test]
    fn a_whole_file_that_does_not_match_its_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let r = Replicas::open(dir.path(), 1 << 20).unwrap();
        let (data, _) = content(1000);
        let wrong = "a".repeat(64);
        r.begin(&wrong, 1000).unwrap();
        r.put(&wrong, 0, &data, &hex(&Sha256::digest(&data)), 1000)
            .unwrap();
        assert!(matches!(r.commit(&wrong), Err(StorageError::Checksum(_))));
        assert!(!r.has(&wrong));
        assert!(matches!(
            r.begin("../../etc/passwd", 10),
            Err(StorageError::Invalid(_))
        ));
        assert!(matches!(
            r.begin(&wrong, 2 << 20),
            Err(StorageError::Invalid(_))
        ));
    }
}
