//! The catalog: what the Raft log replicates ([`StateMachine`] of floe-raft). Songs (metadata
//! only: file bytes never go through the log), and which storage nodes the cluster counts as
//! down (the ring leaves them out). Commands and snapshots are JSON (`docs/dispotify.md`).

use std::collections::{BTreeMap, BTreeSet};

use floe_raft::{ApplyContext, StateMachine};
use serde::{Deserialize, Serialize};

use crate::search::SearchIndex;
use crate::slice::dispotify::Song;

/// A song as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SongRecord {
    /// SHA-256 of the content, hex.
    pub id: String,
    /// The uploaded file's name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Artist.
    pub artist: String,
    /// Album.
    pub album: String,
    /// Track number (0: unknown).
    pub track: i32,
    /// Duration in ms (0: unknown).
    pub duration_ms: i64,
    /// Size in bytes.
    pub size: i64,
    /// Media type.
    pub mime: String,
    /// Log time of the entry (set when applied).
    pub uploaded: i64,
    /// Who uploaded it.
    pub uploader: String,
}

impl SongRecord {
    /// The Slice view.
    pub fn to_slice(&self) -> Song {
        Song {
            id: self.id.clone(),
            name: self.name.clone(),
            title: self.title.clone(),
            artist: self.artist.clone(),
            album: self.album.clone(),
            track: self.track,
            duration_ms: self.duration_ms,
            size: self.size,
            mime: self.mime.clone(),
            uploaded: self.uploaded,
            uploader: self.uploader.clone(),
        }
    }
}

/// A command of the catalog's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Enters a song (its replicas are already on a quorum); a song already there is kept as
    /// it is.
    AddSong(SongRecord),
    /// The leader's health checks have not reached this node for the grace period.
    MarkDown(u64),
    /// The node answers again.
    MarkUp(u64),
}

/// The catalog on every node.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Catalog {
    /// Songs by id.
    pub songs: BTreeMap<String, SongRecord>,
    /// Storage nodes counted as down, by node id.
    pub down: BTreeSet<u64>,
    #[serde(skip)]
    index: SearchIndex,
}

impl Catalog {
    /// A page of the songs matching `query`, best first, and the number of matches.
    pub fn search(&self, query: &str, offset: usize, limit: usize) -> (Vec<Song>, usize) {
        let (ids, total) = self.index.search(query, offset, limit);
        (
            ids.iter()
                .filter_map(|id| self.songs.get(id))
                .map(SongRecord::to_slice)
                .collect(),
            total,
        )
    }

    fn reindex(&mut self) {
        let mut index = SearchIndex::new();
        for s in self.songs.values() {
            index.insert(&s.id, &s.title, &s.artist, &s.album);
        }
        self.index = index;
    }
}

/// The answer to a command: the song as the catalog has it (for AddSong).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// The song entered now.
    Added(SongRecord),
    /// The song was there already (the same content uploaded before or at the same time).
    Existing(SongRecord),
    /// Done.
    Done,
    /// The command could not be read.
    Malformed(String),
}

impl StateMachine for Catalog {
    fn apply(&mut self, command: &[u8], ctx: &ApplyContext) -> Vec<u8> {
        let answer = match serde_json::from_slice::<Command>(command) {
            Err(e) => Answer::Malformed(e.to_string()),
            Ok(Command::AddSong(mut song)) => match self.songs.get(&song.id) {
                Some(existing) => Answer::Existing(existing.clone()),
                None => {
                    song.uploaded = ctx.time;
                    self.index
                        .insert(&song.id, &song.title, &song.artist, &song.album);
                    self.songs.insert(song.id.clone(), song.clone());
                    Answer::Added(song)
                }
            },
            Ok(Command::MarkDown(node)) => {
                self.down.insert(node);
                Answer::Done
            }
            Ok(Command::MarkUp(node)) => {
                self.down.remove(&node);
                Answer::Done
            }
        };
        serde_json::to_vec(&answer).unwrap_or_default()
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let mut c: Catalog =
            serde_json::from_slice(snapshot).map_err(|e| format!("catalog snapshot: {e}"))?;
        c.reindex();
        *self = c;
        Ok(())
    }
}
