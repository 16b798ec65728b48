//! A client of the `Dispotify::Catalog` API over Ice (the binary's client commands and the
//! tests): chunked, checked, resumable uploads and ranged reads.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::slice::dispotify::{self as api, CatalogPrx};
use crate::storage::{CHUNK, hash_file, hex};

/// Uploads the file at `path` in checked chunks (resuming what the node already has) and
/// returns the song the catalog holds for it.
pub async fn upload_file(
    catalog: &CatalogPrx,
    session: &str,
    path: &Path,
    overrides: api::Overrides,
) -> Result<api::Song, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let sha = hash_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let state = catalog
        .begin_upload(session, &name, size as i64, &sha)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut offset = state.received as u64;
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; CHUNK];
    while offset < size {
        let n = file.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the file shrank while it was read".into());
        }
        let chunk = &buf[..n];
        let state = catalog
            .put_chunk(
                &state.upload,
                offset as i64,
                chunk,
                &hex(&Sha256::digest(chunk)),
            )
            .await
            .map_err(|e| format!("{e:?}"))?;
        offset = state.received as u64;
    }
    catalog
        .finish_upload(&state.upload, &overrides)
        .await
        .map_err(|e| format!("{e:?}"))
}

/// Writes song `id` to `out`, read through `catalog` in chunks; returns the bytes written.
pub async fn download(catalog: &CatalogPrx, id: &str, out: &mut impl Write) -> Result<u64, String> {
    let song = catalog.info(id).await.map_err(|e| format!("{e:?}"))?;
    let mut offset = 0u64;
    while offset < song.size as u64 {
        let bytes = catalog
            .read(id, offset as i64, CHUNK as i32)
            .await
            .map_err(|e| format!("{e:?}"))?;
        if bytes.is_empty() {
            return Err(format!(
                "the song ends early, at {offset} of {} bytes",
                song.size
            ));
        }
        out.write_all(&bytes).map_err(|e| e.to_string())?;
        offset += bytes.len() as u64;
    }
    Ok(offset)
}
