//! Search over the catalog: an in-memory index of every song's title, artist and album.
//!
//! [`SearchIndex`] maps each word to the songs that hold it and answers queries as a person types
//! them: case- and accent-insensitive, every word of the query required, the last one possibly
//! unfinished, the best matches first, a page at a time.
//!
//! ```
//! use dispotify::search::SearchIndex;
//!
//! let mut index = SearchIndex::new();
//! index.insert("a1", "Crazy in Love", "Beyoncé", "Dangerously in Love");
//! index.insert("b2", "Halo", "Beyoncé", "I Am... Sasha Fierce");
//! index.insert("c3", "Crazy", "Gnarls Barkley", "St. Elsewhere");
//! assert_eq!(index.search("BEYONCE cra", 0, 10), (vec!["a1".to_string()], 1));
//! assert_eq!(index.search("crazy", 0, 1), (vec!["c3".to_string()], 2));
//! ```
//!
//! # Normalization
//!
//! Titles, artists, albums and queries all go through [`normalize`]: Unicode compatibility
//! decomposition (NFKD, so `ﬁ` is `fi` and `Ｂ` is `B`), lowercase, combining marks dropped (so
//! `é` is `e` and `Ñ` is `n`), a few Latin letters that do not decompose folded to what people
//! type instead (`ø`→`o`, `æ`→`ae`, `œ`→`oe`, `ß`→`ss`, `ł`→`l`, `đ`/`ð`→`d`, `þ`→`th`,
//! `ı`→`i`), and every character that is not alphanumeric made a separator. Words are the
//! runs of alphanumerics that remain. Marks are dropped in every script (a Japanese `ブ` is
//! indexed as `フ`); as the query is treated the same way, this only widens matches.
//!
//! A song is indexed under those words and also, for each run of words that the original text
//! joins with punctuation but no white space, under their concatenation: `AC/DC` is indexed as
//! `ac`, `dc` and `acdc`, `Don't` as `don`, `t` and `dont`, `R.E.M.` as `r`, `e`, `m` and `rem`,
//! `Jay-Z` as `jay`, `z` and `jayz`. So `ac dc`, `ac/dc` and `acdc` all find AC/DC (but `jayz`
//! does not find a `Jay Z` written with a space).
//!
//! # Matching
//!
//! The query is normalized and split into words (its tokens); repeated tokens count once. A
//! song matches when **every** token matches some word of its title, artist or album:
//!
//! - a token matches a word equal to it (a whole-word match);
//! - the **last** token also matches a word that starts with it (a prefix match), provided it
//!   has at least [`MIN_PREFIX_CHARS`] characters: `beatl` finds `Beatles`, `b` alone finds
//!   only the word `b`. Earlier tokens must be whole words (`beatl abbey` finds nothing,
//!   `abbey beatl` finds Abbey Road). White space after the last token changes nothing.
//! - A prefix expands to at most [`MAX_PREFIX_WORDS`] longer words of the index, the first ones
//!   in byte order; songs that match only through words beyond those do not match.
//!
//! A query with no token (empty, only white space or punctuation) matches nothing. Only the
//! first [`MAX_QUERY`] bytes of a query are read (cut at a character boundary), and its
//! normalized form is cut likewise; a word cut in two there is the last token, matched as a
//! prefix. A longer query is never an error.
//!
//! # Ranking
//!
//! A match's score is the sum, over the query's tokens, of the best weight with which the token
//! matched: for a whole-word match, 3 in the title, 2 in the artist and 1 in the album; a prefix
//! match counts two thirds of that (2, 4/3, 2/3). So a title beats an artist, an artist beats an
//! album, and in one field a whole word beats a prefix. Matches are ordered by score, highest
//! first, then by normalized title, then by id, so the order, and thus every page, is
//! deterministic.
//!
//! # Cost
//!
//! Each word has a posting list in a hash map: the internal numbers of the songs that hold it,
//! sorted, each with the fields where it does. The vocabulary is also kept in a sorted map to
//! find a prefix's words. A query starts from the token with the fewest postings (a whole
//! word's list, or the union of a prefix's lists), which gives the candidates and their first
//! weights; each other token then filters them, fewest postings first: a whole word by a
//! galloping merge with its list, a prefix by checking each candidate's own words. Only the
//! requested page is sorted. Inserting or removing a song touches the posting lists of its
//! words (a list is a sorted `Vec`, so a word held by every song costs a `memmove` of its
//! list). Memory per song is bounded: each field is cut to [`MAX_FIELD`] bytes before it is
//! normalized, and to as many bytes of normalized words after (NFKD can expand a character
//! into many); the word at a cut is dropped. An index holds up to 2^29 songs.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Bound;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The longest query read, in bytes of UTF-8: a longer query is cut at a character boundary
/// (not refused), and so is its normalized form.
pub const MAX_QUERY: usize = 256;

/// The most bytes of each field (title, artist, album) that are indexed: a field is cut at a
/// character boundary to this many bytes before it is normalized, and its normalized words are
/// limited to this many bytes too.
pub const MAX_FIELD: usize = 512;

/// The most words longer than the last token that its prefix match expands to (the first ones
/// in byte order), so that a short prefix cannot make a query scan the whole vocabulary.
pub const MAX_PREFIX_WORDS: usize = 10_000;

/// The fewest characters (of the normalized token) for the last token to match as a prefix;
/// a shorter last token matches whole words only.
pub const MIN_PREFIX_CHARS: usize = 2;

/// Field bits of a song's word.
const TITLE: u8 = 1;
const ARTIST: u8 = 2;
const ALBUM: u8 = 4;

/// Scores are kept in thirds so that they stay integers: a whole-word match counts 3 × the
/// field's weight, a prefix match 2 ×.
const WHOLE: u32 = 3;
const PREFIX: u32 = 2;
/// The best a token can score (a whole word of the title).
const BEST: u32 = WHOLE * 3;

/// The weight of the best field among `fields` (bits of [`TITLE`], [`ARTIST`], [`ALBUM`]).
fn field_weight(fields: u8) -> u32 {
    if fields & TITLE != 0 {
        3
    } else if fields & ARTIST != 0 {
        2
    } else {
        1
    }
}

/// Normalizes `text` for search: NFKD, lowercase, combining marks dropped, a few Latin letters
/// folded (`ø`→`o`, `æ`→`ae`, `ß`→`ss`, ...), every run of non-alphanumeric characters made
/// one space, no space at either end. See the [module documentation](self).
///
/// ```
/// assert_eq!(dispotify::search::normalize("  Beyoncé — Crazy in LOVE!! "), "beyonce crazy in love");
/// assert_eq!(dispotify::search::normalize("AC/DC"), "ac dc");
/// ```
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in folded(text) {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    out
}

/// The characters of `text` decomposed (NFKD), lowercased, without combining marks, folded.
/// ASCII text, for which all of that is just lowercasing, takes a shortcut.
fn folded(text: &str) -> impl Iterator<Item = char> + '_ {
    let ascii = text.is_ascii();
    let fast = ascii.then(|| text.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    let slow = (!ascii).then(|| {
        text.nfkd()
            .flat_map(char::to_lowercase)
            .filter(|&c| !is_combining_mark(c))
            .flat_map(|c| fold(c).into_iter().flatten())
    });
    fast.into_iter().flatten().chain(slow.into_iter().flatten())
}

/// Latin letters without a decomposition, written as people type them.
fn fold(c: char) -> [Option<char>; 2] {
    match c {
        'ø' => [Some('o'), None],
        'æ' => [Some('a'), Some('e')],
        'œ' => [Some('o'), Some('e')],
        'ß' => [Some('s'), Some('s')],
        'ł' => [Some('l'), None],
        'đ' | 'ð' => [Some('d'), None],
        'þ' => [Some('t'), Some('h')],
        'ı' => [Some('i'), None],
        c => [Some(c), None],
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Calls `emit` with every word a field is indexed under: its normalized words and, for each
/// run of two or more words joined by punctuation without white space, their concatenation.
/// Reads at most [`MAX_FIELD`] bytes of `text` and produces at most [`MAX_FIELD`] bytes of
/// normalized words (plus as many of concatenations); a word cut by either limit is dropped.
fn field_words(text: &str, mut emit: impl FnMut(&str)) {
    let cut_short = text.len() > MAX_FIELD;
    let mut word = String::new();
    let mut joined = String::new();
    let mut parts = 0usize;
    let mut budget = MAX_FIELD;
    for c in folded(cut(text, MAX_FIELD)) {
        if c.is_alphanumeric() {
            let Some(left) = budget.checked_sub(c.len_utf8()) else {
                // Out of room: drop the word being read, and its run.
                return;
            };
            budget = left;
            word.push(c);
            joined.push(c);
        } else {
            if !word.is_empty() {
                emit(&word);
                word.clear();
                parts += 1;
            }
            if c.is_whitespace() {
                if parts > 1 {
                    emit(&joined);
                }
                joined.clear();
                parts = 0;
            }
        }
    }
    if cut_short && !word.is_empty() {
        // The raw field was cut inside this word.
        return;
    }
    if !word.is_empty() {
        emit(&word);
        parts += 1;
    }
    if parts > 1 {
        emit(&joined);
    }
}

/// How many low bits of a posting hold its fields.
const FIELD_BITS: u32 = 3;

/// The most songs an index holds (a song's internal number shares a `u32` with its fields).
const MAX_SONGS: usize = 1 << (32 - FIELD_BITS);

/// A posting: a song's internal number and the fields (bits) where it holds the word. Postings
/// sort by number.
fn posting(number: u32, fields: u8) -> u32 {
    (number << FIELD_BITS) | u32::from(fields)
}

fn number_of(posting: u32) -> u32 {
    posting >> FIELD_BITS
}

fn fields_of(posting: u32) -> u8 {
    (posting & ((1 << FIELD_BITS) - 1)) as u8
}

/// The position of the first of `postings` at or after `from` whose number is at least
/// `number` (galloping, then a binary search).
fn seek(postings: &[u32], from: usize, number: u32) -> usize {
    let key = number << FIELD_BITS;
    let (mut lo, mut hi, mut step) = (from, from, 1);
    while hi < postings.len() && postings[hi] < key {
        lo = hi + 1;
        hi += step;
        step *= 2;
    }
    let hi = hi.min(postings.len());
    lo + postings[lo..hi].partition_point(|&p| p < key)
}

/// A word of the index and its postings, sorted.
#[derive(Debug, Default)]
struct Word {
    text: Box<str>,
    postings: Vec<u32>,
}

/// A song as the index keeps it.
#[derive(Debug)]
struct Entry {
    id: Box<str>,
    /// The normalized title, for ties.
    title: Box<str>,
    /// Its first 8 bytes, big-endian and zero-padded: compares like `title` as far as it goes.
    title_head: u64,
    /// Its distinct words (ids into `SearchIndex::words`) with the fields that hold each.
    words: Box<[(u32, u8)]>,
}

/// An in-memory search index over songs' titles, artists and albums.
///
/// See the [module documentation](self) for normalization, matching and ranking. The index is
/// not synchronized: share it behind a lock (searches take `&self`).
#[derive(Default)]
pub struct SearchIndex {
    /// Words by id; a free id has an empty text and no postings.
    words: Vec<Word>,
    free_words: Vec<u32>,
    /// Word text → id.
    word_ids: HashMap<Box<str>, u32>,
    /// The same, in byte order, for prefixes.
    sorted_words: BTreeMap<Box<str>, u32>,
    /// Songs by internal number; `None` is free.
    entries: Vec<Option<Entry>>,
    free_entries: Vec<u32>,
    /// Song id → internal number.
    numbers: HashMap<Box<str>, u32>,
}

impl fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SearchIndex")
            .field("songs", &self.numbers.len())
            .field("words", &self.word_ids.len())
            .finish_non_exhaustive()
    }
}

/// A query token resolved against the index.
#[derive(Debug)]
struct Term {
    /// The word equal to the token, if the index has it.
    whole: Option<u32>,
    /// For the last token: the longer words it is a prefix of (at most [`MAX_PREFIX_WORDS`]),
    /// as a list and as a set.
    longer: Option<(Vec<u32>, Bits)>,
    /// How many postings it has in all (an upper bound on its songs).
    postings: usize,
}

impl Term {
    /// The best weight with which this token matches a word of `entry` (0: it does not).
    fn weight(&self, entry: &Entry) -> u32 {
        let mut best = 0;
        for &(word, fields) in entry.words.iter() {
            let weight = if Some(word) == self.whole {
                WHOLE * field_weight(fields)
            } else if self
                .longer
                .as_ref()
                .is_some_and(|(_, set)| set.contains(word))
            {
                PREFIX * field_weight(fields)
            } else {
                continue;
            };
            best = best.max(weight);
            if best == BEST {
                break;
            }
        }
        best
    }

    /// Its words with the weight of each kind of match (whole or prefix).
    fn sources(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let longer = self.longer.iter().flat_map(|(list, _)| list.iter());
        (self.whole.map(|word| (word, WHOLE)).into_iter()).chain(longer.map(|&word| (word, PREFIX)))
    }
}

/// A fixed-size bit set of `u32`s.
#[derive(Debug)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    fn insert(&mut self, i: u32) {
        let i = i as usize;
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn contains(&self, i: u32) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// A match being ranked: score, title head, song.
type Hit<'a> = (u32, u64, &'a Entry);

/// Best first: score, then normalized title, then id.
fn rank(a: &Hit<'_>, b: &Hit<'_>) -> Ordering {
    b.0.cmp(&a.0)
        .then(a.1.cmp(&b.1))
        .then_with(|| a.2.title.cmp(&b.2.title))
        .then_with(|| a.2.id.cmp(&b.2.id))
}

impl SearchIndex {
    /// An empty index.
    pub fn new() -> SearchIndex {
        SearchIndex::default()
    }

    /// Indexes the song `id` under the words of its title, artist and album, replacing what was
    /// indexed for `id` before.
    ///
    /// # Panics
    ///
    /// If the index already holds 2^29 (536,870,912) songs.
    pub fn insert(&mut self, id: &str, title: &str, artist: &str, album: &str) {
        self.remove(id);
        let mut found: Vec<(String, u8)> = Vec::new();
        for (text, field) in [(title, TITLE), (artist, ARTIST), (album, ALBUM)] {
            field_words(text, |word| found.push((word.to_owned(), field)));
        }
        found.sort_unstable();
        let mut merged: Vec<(String, u8)> = Vec::with_capacity(found.len());
        for (text, field) in found {
            match merged.last_mut() {
                Some(last) if last.0 == text => last.1 |= field,
                _ => merged.push((text, field)),
            }
        }

        let number = match self.free_entries.pop() {
            Some(number) => number,
            None => {
                assert!(
                    self.entries.len() < MAX_SONGS,
                    "a search index holds at most 2^29 songs"
                );
                self.entries.push(None);
                (self.entries.len() - 1) as u32
            }
        };
        let mut words = Vec::with_capacity(merged.len());
        for (text, fields) in merged {
            let word = self.word_id(text);
            let postings = &mut self.words[word as usize].postings;
            let new = posting(number, fields);
            if postings.last().is_none_or(|&last| last < new) {
                postings.push(new);
            } else {
                let at = postings.partition_point(|&p| p < new);
                postings.insert(at, new);
            }
            words.push((word, fields));
        }
        let title = normalize(cut(title, MAX_FIELD));
        let title = cut(&title, MAX_FIELD);
        let mut head = [0u8; 8];
        let n = title.len().min(8);
        head[..n].copy_from_slice(&title.as_bytes()[..n]);
        self.entries[number as usize] = Some(Entry {
            id: id.into(),
            title: title.into(),
            title_head: u64::from_be_bytes(head),
            words: words.into_boxed_slice(),
        });
        self.numbers.insert(id.into(), number);
    }

    /// The id of the word `text`, added to the vocabulary if new.
    fn word_id(&mut self, text: String) -> u32 {
        if let Some(&word) = self.word_ids.get(text.as_str()) {
            return word;
        }
        let text = text.into_boxed_str();
        let word = match self.free_words.pop() {
            Some(word) => {
                self.words[word as usize].text = text.clone();
                word
            }
            None => {
                self.words.push(Word {
                    text: text.clone(),
                    postings: Vec::new(),
                });
                // Fewer words than postings, and fewer postings than 3 × 2 × MAX_FIELD × songs.
                u32::try_from(self.words.len() - 1).expect("fewer than 2^32 words")
            }
        };
        self.word_ids.insert(text.clone(), word);
        self.sorted_words.insert(text, word);
        word
    }

    /// Removes the song `id` from the index; nothing happens if it is not there.
    pub fn remove(&mut self, id: &str) {
        let Some(number) = self.numbers.remove(id) else {
            return;
        };
        let Some(entry) = self.entries[number as usize].take() else {
            return;
        };
        for &(word, fields) in entry.words.iter() {
            let w = &mut self.words[word as usize];
            if let Ok(at) = w.postings.binary_search(&posting(number, fields)) {
                w.postings.remove(at);
            }
            if w.postings.is_empty() {
                let Word { text, .. } = std::mem::take(w);
                self.word_ids.remove(&text);
                self.sorted_words.remove(&text);
                self.free_words.push(word);
            }
        }
        self.free_entries.push(number);
    }

    /// How many songs are indexed.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    /// Whether no song is indexed.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }

    /// Ids ranked best first, the page [offset, offset+limit), and the total number of matches.
    ///
    /// The query is cut to [`MAX_QUERY`] bytes and normalized; a song matches when every token
    /// matches a word of its title, artist or album, the last token possibly as a prefix.
    /// A query without tokens matches nothing: `(vec![], 0)`. A page past the end is empty
    /// but still gives the total. See the [module documentation](self).
    pub fn search(&self, query: &str, offset: usize, limit: usize) -> (Vec<String>, usize) {
        let none = (Vec::new(), 0);
        let normalized = normalize(cut(query, MAX_QUERY));
        let mut tokens: Vec<&str> = cut(&normalized, MAX_QUERY).split_whitespace().collect();
        let Some(last) = tokens.pop() else {
            return none;
        };
        let mut wholes: Vec<&str> = Vec::with_capacity(tokens.len());
        for token in tokens {
            if !wholes.contains(&token) {
                wholes.push(token);
            }
        }

        let mut terms = Vec::with_capacity(wholes.len() + 1);
        for token in &wholes {
            let Some(&word) = self.word_ids.get(*token) else {
                return none;
            };
            terms.push(Term {
                whole: Some(word),
                longer: None,
                postings: self.words[word as usize].postings.len(),
            });
        }
        if !wholes.contains(&last) {
            match self.last_term(last) {
                Some(term) => terms.push(term),
                None => return none,
            }
        }
        // The cheapest gives the candidates; the others filter them, cheapest first.
        terms.sort_by_key(|term| term.postings);
        let Some((first, rest)) = terms.split_first() else {
            return none;
        };

        // (song number, score so far), by number.
        let mut hits = self.candidates(first);
        for term in rest {
            if hits.is_empty() {
                break;
            }
            if let Term {
                whole: Some(word),
                longer: None,
                ..
            } = term
            {
                let postings = &self.words[*word as usize].postings;
                let mut at = 0;
                hits.retain_mut(|(number, score)| {
                    at = seek(postings, at, *number);
                    match postings.get(at) {
                        Some(&p) if number_of(p) == *number => {
                            *score += WHOLE * field_weight(fields_of(p));
                            true
                        }
                        _ => false,
                    }
                });
            } else {
                hits.retain_mut(|(number, score)| {
                    let weight = self.entries[*number as usize]
                        .as_ref()
                        .map_or(0, |entry| term.weight(entry));
                    *score += weight;
                    weight > 0
                });
            }
        }

        let mut ranked: Vec<Hit<'_>> = hits
            .iter()
            .filter_map(|&(number, score)| {
                let entry = self.entries[number as usize].as_ref()?;
                Some((score, entry.title_head, entry))
            })
            .collect();
        let total = ranked.len();
        let end = offset.saturating_add(limit).min(total);
        if offset >= end {
            return (Vec::new(), total);
        }
        if end < total {
            ranked.select_nth_unstable_by(end - 1, rank);
            ranked.truncate(end);
        }
        if offset > 0 {
            ranked.select_nth_unstable_by(offset, rank);
        }
        let page = &mut ranked[offset..];
        page.sort_unstable_by(rank);
        (page.iter().map(|hit| hit.2.id.to_string()).collect(), total)
    }

    /// The songs of `term` with the weight of its best match in each, by number.
    fn candidates(&self, term: &Term) -> Vec<(u32, u32)> {
        let weighted = |(word, kind): (u32, u32)| {
            let postings = &self.words[word as usize].postings;
            postings
                .iter()
                .map(move |&p| (number_of(p), kind * field_weight(fields_of(p))))
        };
        if term.longer.is_none() {
            return term.sources().flat_map(weighted).collect();
        }
        if term.postings.saturating_mul(16) < self.entries.len() {
            // Few: sort them, keeping each song's best weight.
            let mut hits: Vec<(u32, u32)> = term.sources().flat_map(weighted).collect();
            hits.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            hits.dedup_by_key(|hit| hit.0);
            return hits;
        }
        // Many: the best weight of every song number.
        let mut best = vec![0u8; self.entries.len()];
        for (number, weight) in term.sources().flat_map(weighted) {
            let b = &mut best[number as usize];
            *b = (*b).max(weight as u8);
        }
        (best.iter().enumerate())
            .filter(|&(_, &b)| b != 0)
            .map(|(number, &b)| (number as u32, u32::from(b)))
            .collect()
    }

    /// The last token resolved: its whole word and, if it is long enough, the longer words it
    /// starts; `None` if there are neither.
    fn last_term(&self, token: &str) -> Option<Term> {
        let whole = self.word_ids.get(token).copied();
        let mut postings = whole.map_or(0, |word| self.words[word as usize].postings.len());
        let mut longer = None;
        if token.chars().nth(MIN_PREFIX_CHARS - 1).is_some() {
            let list: Vec<u32> = self
                .sorted_words
                .range::<str, _>((Bound::Excluded(token), Bound::Unbounded))
                .take_while(|(text, _)| text.starts_with(token))
                .take(MAX_PREFIX_WORDS)
                .map(|(_, &word)| word)
                .collect();
            if !list.is_empty() {
                let mut set = Bits::new(self.words.len());
                for &word in &list {
                    postings += self.words[word as usize].postings.len();
                    set.insert(word);
                }
                longer = Some((list, set));
            }
        }
        (whole.is_some() || longer.is_some()).then_some(Term {
            whole,
            longer,
            postings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    /// Every match of `query`, best first.
    fn find(index: &SearchIndex, query: &str) -> Vec<String> {
        let (ids, total) = index.search(query, 0, usize::MAX);
        assert_eq!(ids.len(), total, "{query:?}");
        ids
    }

    fn strings(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn normalize_folds_case_accents_compatibility_and_punctuation() {
        assert_eq!(
            normalize("  Beyoncé — Crazy in LOVE!! "),
            "beyonce crazy in love"
        );
        assert_eq!(normalize("Ñandú"), "nandu");
        assert_eq!(normalize("ÅNGSTRÖM Motörhead"), "angstrom motorhead");
        assert_eq!(normalize("ﬁre ＡＢＣ ①"), "fire abc 1");
        assert_eq!(
            normalize("Røyksopp Straße Œuvre Łódź"),
            "royksopp strasse oeuvre lodz"
        );
        assert_eq!(normalize("İSTANBUL"), "istanbul");
        assert_eq!(normalize("AC/DC"), "ac dc");
        assert_eq!(normalize("Guns N' Roses"), "guns n roses");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize(" -- / ... "), "");
        assert_eq!(normalize("東京 2020"), "東京 2020");
    }

    #[test]
    fn accents_and_case_do_not_matter() {
        let mut index = SearchIndex::new();
        index.insert("1", "Crazy in Love", "Beyoncé", "Dangerously in Love");
        index.insert("2", "Ñandú", "Los Pájaros", "Pampa");
        index.insert("3", "Halo", "BEYONCE", "I Am... Sasha Fierce");
        for query in ["beyonce", "BEYONCÉ", "Beyoncé", "beyoncé", "BeYoNcE"] {
            assert_eq!(find(&index, query), strings(&["1", "3"]), "{query:?}");
        }
        for query in ["nandu", "ÑANDÚ", "Ñandu", "pajaros nandu"] {
            assert_eq!(find(&index, query), strings(&["2"]), "{query:?}");
        }
    }

    #[test]
    fn every_token_must_match_across_fields() {
        let mut index = SearchIndex::new();
        index.insert("1", "Crazy in Love", "Beyoncé", "Dangerously in Love");
        index.insert("2", "Crazy", "Gnarls Barkley", "St. Elsewhere");
        index.insert("3", "Halo", "Beyoncé", "I Am... Sasha Fierce");
        assert_eq!(find(&index, "crazy beyonce"), strings(&["1"]));
        assert_eq!(find(&index, "beyonce crazy"), strings(&["1"]));
        assert_eq!(find(&index, "crazy barkley"), strings(&["2"]));
        assert_eq!(find(&index, "crazy"), strings(&["2", "1"]));
        assert_eq!(find(&index, "crazy halo"), strings(&[]));
        assert_eq!(find(&index, "crazy nobody"), strings(&[]));
        assert_eq!(find(&index, "halo sasha fierce beyonce"), strings(&["3"]));
    }

    #[test]
    fn only_the_last_token_is_a_prefix_of_two_characters_or_more() {
        let mut index = SearchIndex::new();
        index.insert("1", "Come Together", "The Beatles", "Abbey Road");
        index.insert("2", "B", "Single Letter", "X");
        assert_eq!(find(&index, "beatl"), strings(&["1"]));
        assert_eq!(find(&index, "the beatl"), strings(&["1"]));
        assert_eq!(find(&index, "abbey beatl"), strings(&["1"]));
        assert_eq!(find(&index, "beatl abbey"), strings(&[]));
        assert_eq!(find(&index, "beatles"), strings(&["1"]));
        assert_eq!(find(&index, "beatlesque"), strings(&[]));
        assert_eq!(find(&index, "be"), strings(&["1"]));
        assert_eq!(find(&index, "b"), strings(&["2"]));
        assert_eq!(find(&index, "beatl "), strings(&["1"]));
    }

    #[test]
    fn ranking_title_over_artist_over_album_and_whole_over_prefix() {
        let mut index = SearchIndex::new();
        index.insert("album", "Song C", "Somebody", "River");
        index.insert("artist", "Song B", "River", "Something");
        index.insert("title", "River Song", "Someone", "Some Album");
        assert_eq!(
            find(&index, "river"),
            strings(&["title", "artist", "album"])
        );

        // In one field a whole word beats a prefix, though the prefix's title sorts first.
        let mut index = SearchIndex::new();
        index.insert("prefix", "Lovers", "x", "y");
        index.insert("whole", "Zero Love", "x", "y");
        assert_eq!(find(&index, "love"), strings(&["whole", "prefix"]));
        // Both prefixes: a tie, broken by title.
        assert_eq!(find(&index, "lov"), strings(&["prefix", "whole"]));

        // A prefix in the title (2) beats a whole word in the album (1).
        let mut index = SearchIndex::new();
        index.insert("album", "Zebra", "x", "Rain");
        index.insert("title", "Rainbow", "x", "y");
        assert_eq!(find(&index, "rain"), strings(&["title", "album"]));

        // Scores add up over tokens.
        let mut index = SearchIndex::new();
        index.insert("title+album", "Blue", "x", "Moon");
        index.insert("title+title", "Blue Moon", "x", "y");
        index.insert("title+artist", "Blue", "Moon", "y");
        assert_eq!(
            find(&index, "blue moon"),
            strings(&["title+title", "title+artist", "title+album"])
        );
    }

    #[test]
    fn ties_are_broken_by_normalized_title_then_id() {
        let mut index = SearchIndex::new();
        index.insert("b", "Same Song", "x", "y");
        index.insert("a", "Same Song", "x", "y");
        index.insert("c", "Zeta Song", "x", "y");
        // "Échelle" sorts after "Zeta" in raw bytes, before it normalized.
        index.insert("d", "Échelle Song", "x", "y");
        assert_eq!(find(&index, "song"), strings(&["d", "a", "b", "c"]));
        assert_eq!(index.search("song", 1, 2), (strings(&["a", "b"]), 4));
    }

    #[test]
    fn pages_and_total() {
        let mut index = SearchIndex::new();
        for i in 0..25 {
            index.insert(&format!("id{i:02}"), &format!("Track {i:02}"), "Band", "LP");
        }
        index.insert("first", "Band on the Run", "Wings", "Band on the Run");
        let all = find(&index, "band");
        assert_eq!(all.len(), 26);
        assert_eq!(all[0], "first");
        assert_eq!(
            all[1..],
            (0..25).map(|i| format!("id{i:02}")).collect::<Vec<_>>()[..]
        );

        assert_eq!(index.search("band", 0, 10), (all[0..10].to_vec(), 26));
        assert_eq!(index.search("band", 10, 10), (all[10..20].to_vec(), 26));
        assert_eq!(index.search("band", 20, 10), (all[20..26].to_vec(), 26));
        assert_eq!(index.search("band", 7, 3), (all[7..10].to_vec(), 26));
        assert_eq!(index.search("band", 5, usize::MAX), (all[5..].to_vec(), 26));
        assert_eq!(index.search("band", 26, 10), (vec![], 26));
        assert_eq!(index.search("band", 1000, 10), (vec![], 26));
        assert_eq!(index.search("band", 3, 0), (vec![], 26));
        assert_eq!(index.search("band", usize::MAX, usize::MAX), (vec![], 26));
        let pages: Vec<String> = (0..6)
            .flat_map(|p| index.search("band", p * 5, 5).0)
            .collect();
        assert_eq!(pages, all);
    }

    #[test]
    fn remove_and_replace_update_results() {
        let mut index = SearchIndex::new();
        assert!(index.is_empty());
        index.insert("x", "Yellow", "Coldplay", "Parachutes");
        index.insert("y", "Fix You", "Coldplay", "X&Y");
        assert_eq!((index.len(), find(&index, "yellow")), (2, strings(&["x"])));

        index.insert("x", "Clocks", "Coldplay", "A Rush of Blood to the Head");
        assert_eq!(index.len(), 2);
        assert_eq!(find(&index, "yellow"), strings(&[]));
        assert_eq!(find(&index, "parachutes"), strings(&[]));
        assert_eq!(find(&index, "clocks"), strings(&["x"]));
        assert_eq!(find(&index, "coldplay"), strings(&["x", "y"]));

        index.remove("x");
        index.remove("x");
        index.remove("nobody");
        assert_eq!(index.len(), 1);
        assert_eq!(find(&index, "clocks"), strings(&[]));
        assert_eq!(find(&index, "coldplay"), strings(&["y"]));

        index.remove("y");
        assert!(index.is_empty());
        assert_eq!(find(&index, "coldplay"), strings(&[]));
        // Nothing of the removed songs is left behind.
        assert!(index.word_ids.is_empty() && index.sorted_words.is_empty());
        assert!(
            index
                .words
                .iter()
                .all(|w| w.text.is_empty() && w.postings.is_empty())
        );

        // Freed numbers and words are reused.
        index.insert("z", "Yellow", "Coldplay", "Parachutes");
        index.insert("x", "Viva la Vida", "Coldplay", "Viva la Vida");
        assert_eq!(find(&index, "yel"), strings(&["z"]));
        assert_eq!(find(&index, "coldplay"), strings(&["x", "z"]));
        assert_eq!(index.entries.len(), 2);
        assert_eq!(
            format!("{index:?}"),
            "SearchIndex { songs: 2, words: 6, .. }"
        );
    }

    #[test]
    fn empty_and_blank_queries_match_nothing() {
        let mut index = SearchIndex::new();
        assert_eq!(index.search("anything", 0, 10), (vec![], 0));
        index.insert("1", "Song", "Artist", "Album");
        for query in ["", " ", "  \t\n ", "!!!", " — ", "...", "/"] {
            assert_eq!(index.search(query, 0, 10), (vec![], 0), "{query:?}");
        }
    }

    #[test]
    fn punctuation_separates_and_joins_words() {
        let mut index = SearchIndex::new();
        index.insert("acdc", "Highway to Hell", "AC/DC", "Highway to Hell");
        index.insert("queen", "Don't Stop Me Now", "Queen", "Jazz");
        index.insert("rem", "Losing My Religion", "R.E.M.", "Out of Time");
        index.insert("jayz", "Empire State of Mind", "Jay-Z", "The Blueprint 3");
        for query in [
            "ac dc",
            "AC/DC",
            "acdc",
            "ac-dc",
            "AC DC",
            "acd",
            "hell ac dc",
        ] {
            assert_eq!(find(&index, query), strings(&["acdc"]), "{query:?}");
        }
        for query in ["dont stop", "don't", "DON'T STOP", "don t stop", "dont"] {
            assert_eq!(find(&index, query), strings(&["queen"]), "{query:?}");
        }
        for query in ["rem", "r.e.m.", "r e m", "religion rem"] {
            assert_eq!(find(&index, query), strings(&["rem"]), "{query:?}");
        }
        for query in ["jayz", "jay z", "jay-z", "Jay-Z Empire"] {
            assert_eq!(find(&index, query), strings(&["jayz"]), "{query:?}");
        }
    }

    #[test]
    fn long_queries_are_cut_not_refused() {
        let mut index = SearchIndex::new();
        index.insert("1", "Crazy in Love", "Beyoncé", "Dangerously in Love");
        // 42 × "crazy " is 252 bytes, so the cut leaves "craz" last: a prefix of "crazy".
        assert_eq!(find(&index, &"crazy ".repeat(100)), strings(&["1"]));
        assert_eq!(
            find(&index, &format!("beyonce {}", "z".repeat(10_000))),
            strings(&[])
        );
        // The part past the cut is not read at all.
        assert_eq!(
            find(&index, &format!("{}crazy", " ".repeat(MAX_QUERY))),
            strings(&[])
        );
        assert_eq!(
            find(&index, &format!("{}crazy", " ".repeat(MAX_QUERY - 5))),
            strings(&["1"])
        );
        // Cuts fall on character boundaries; expansions by NFKD are cut too.
        assert_eq!(find(&index, &"é".repeat(1000)), strings(&[]));
        assert_eq!(find(&index, &"\u{FDFA}".repeat(1000)), strings(&[]));
        assert_eq!(find(&index, &format!("a{}", "€".repeat(200))), strings(&[]));
    }

    #[test]
    fn fields_are_cut_so_memory_per_song_is_bounded() {
        let mut index = SearchIndex::new();
        let long = format!("{}tail", "word ".repeat(200));
        index.insert("long", &long, "Artist", "Album");
        assert_eq!(find(&index, "word"), strings(&["long"]));
        assert_eq!(find(&index, "tail"), strings(&[]));
        // U+FDFA is 3 bytes and decomposes to 18 letters (33 bytes).
        index.insert(
            "wide",
            &"\u{FDFA}".repeat(1000),
            &"x".repeat(100_000),
            "Album",
        );
        let entry = index
            .entries
            .iter()
            .flatten()
            .find(|e| &*e.id == "wide")
            .unwrap();
        let bytes: usize = entry
            .words
            .iter()
            .map(|&(w, _)| index.words[w as usize].text.len())
            .sum();
        assert!(bytes <= 3 * 2 * MAX_FIELD, "{bytes}");
        assert!(entry.title.len() <= MAX_FIELD);
        // The artist, cut inside its only word, has no word left.
        assert_eq!(find(&index, "xxx"), strings(&[]));
    }

    #[test]
    fn prefix_expansion_is_capped_the_same_way_on_every_path() {
        let mut index = SearchIndex::new();
        let n = MAX_PREFIX_WORDS + 50;
        for i in 0..n {
            let artist = if i >= MAX_PREFIX_WORDS - 10 {
                "rare"
            } else {
                "common"
            };
            index.insert(&format!("{i:05}"), &format!("zq{i:05}"), artist, "album");
        }
        // zq00000 ..= zq09999 are the first MAX_PREFIX_WORDS words after "zq".
        assert_eq!(index.search("zq", 0, 0).1, MAX_PREFIX_WORDS);
        // "rare" (60 songs) gives the candidates; the prefix only checks them.
        let (ids, total) = index.search("rare zq", 0, 100);
        assert_eq!(total, 10);
        assert_eq!(
            ids,
            (MAX_PREFIX_WORDS - 10..MAX_PREFIX_WORDS)
                .map(|i| format!("{i:05}"))
                .collect::<Vec<_>>()
        );
        // A longer prefix reaches the rest.
        assert_eq!(index.search("rare zq1", 0, 0).1, 50);
    }

    // A synthetic catalog: 1,000 artists ("The <adjective> <noun>") of 100 songs each, 10 albums
    // per artist, titles of two words from a list and the song's number.

    const ADJECTIVES: [&str; 40] = [
        "silver", "golden", "electric", "velvet", "crimson", "hollow", "midnight", "neon", "wild",
        "broken", "frozen", "burning", "quiet", "lunar", "solar", "iron", "paper", "glass",
        "crystal", "savage", "gentle", "cosmic", "urban", "rusty", "lucky", "lonely", "sonic",
        "atomic", "royal", "faded", "bitter", "sweet", "hidden", "restless", "dusty", "vivid",
        "stone", "wooden", "mellow", "shiny",
    ];
    const NOUNS: [&str; 25] = [
        "wolves",
        "tigers",
        "rivers",
        "engines",
        "ghosts",
        "kings",
        "machines",
        "pilots",
        "sailors",
        "shadows",
        "foxes",
        "giants",
        "hearts",
        "mirrors",
        "owls",
        "ravens",
        "robots",
        "saints",
        "strangers",
        "thieves",
        "wizards",
        "angels",
        "bandits",
        "comets",
        "drifters",
    ];
    const ALBUMS: [&str; 20] = [
        "horizons",
        "echoes",
        "signals",
        "daydreams",
        "fragments",
        "tides",
        "landscapes",
        "letters",
        "seasons",
        "voltage",
        "harbors",
        "gardens",
        "satellites",
        "postcards",
        "reflections",
        "currents",
        "skylines",
        "stories",
        "embers",
        "motions",
    ];
    const VOLUMES: [&str; 10] = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    ];
    const TITLE_WORDS: [&str; 50] = [
        "love",
        "night",
        "dream",
        "fire",
        "rain",
        "summer",
        "heart",
        "dance",
        "light",
        "road",
        "home",
        "time",
        "sky",
        "blue",
        "ocean",
        "star",
        "city",
        "river",
        "song",
        "kiss",
        "moon",
        "sun",
        "wind",
        "storm",
        "rose",
        "baby",
        "girl",
        "boy",
        "world",
        "life",
        "soul",
        "shine",
        "tears",
        "smile",
        "ride",
        "run",
        "fly",
        "fall",
        "rise",
        "wave",
        "Café",
        "Corazón",
        "Niño",
        "Señorita",
        "Déjà",
        "Vu",
        "Crème",
        "Naïve",
        "Über",
        "Mañana",
    ];

    fn splitmix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    fn capitalized(word: &str) -> String {
        let mut chars = word.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default()
    }

    /// Song `i` of the synthetic catalog: id (64 hex digits), title, artist, album.
    fn synthetic(i: usize) -> [String; 4] {
        let r = splitmix(i as u64);
        let id = (0..4)
            .map(|k| format!("{:016x}", splitmix(r ^ k)))
            .collect();
        let a = i % 1000;
        let j = (i / 1000) % 10;
        let w1 = TITLE_WORDS[(r % 50) as usize];
        let w2 = TITLE_WORDS[((r >> 8) % 50) as usize];
        let title = format!("{} {w2} {i}", capitalized(w1));
        let artist = format!(
            "The {} {}",
            capitalized(ADJECTIVES[a % 40]),
            capitalized(NOUNS[a / 40])
        );
        let album = format!(
            "{} {}",
            capitalized(ALBUMS[(a + j) % 20]),
            capitalized(VOLUMES[j])
        );
        [id, title, artist, album]
    }

    /// A plain scan of the songs following the documented semantics (for queries without
    /// repeated tokens and prefixes below the cap): ranked ids.
    fn reference(songs: &[[String; 4]], words: &[[Vec<String>; 3]], query: &str) -> Vec<String> {
        let normalized = normalize(query);
        let tokens: Vec<&str> = normalized.split(' ').filter(|t| !t.is_empty()).collect();
        let mut hits: Vec<(u32, String, &str)> = Vec::new();
        'songs: for (song, fields) in songs.iter().zip(words) {
            let mut score = 0;
            for (k, token) in tokens.iter().enumerate() {
                let prefix = k + 1 == tokens.len() && token.chars().count() >= MIN_PREFIX_CHARS;
                let mut best = 0;
                for (field, weight) in fields.iter().zip([3, 2, 1]) {
                    for word in field {
                        if word == token {
                            best = best.max(3 * weight);
                        } else if prefix && word.starts_with(token) {
                            best = best.max(2 * weight);
                        }
                    }
                }
                if best == 0 {
                    continue 'songs;
                }
                score += best;
            }
            hits.push((score, normalize(&song[1]), &song[0]));
        }
        hits.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.cmp(&b.1))
                .then_with(|| a.2.cmp(b.2))
        });
        hits.into_iter().map(|(_, _, id)| id.to_string()).collect()
    }

    #[test]
    fn hundred_thousand_songs() {
        const N: usize = 100_000;
        // The generator's word lists are disjoint, so whole-word counts follow from its shape.
        let mut all: Vec<String> = [&ADJECTIVES[..], &NOUNS, &ALBUMS, &VOLUMES, &TITLE_WORDS]
            .concat()
            .iter()
            .map(|w| normalize(w))
            .collect();
        all.push("the".into());
        let distinct = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), distinct);

        let songs: Vec<[String; 4]> = (0..N).map(synthetic).collect();
        let start = Instant::now();
        let mut index = SearchIndex::new();
        for [id, title, artist, album] in &songs {
            index.insert(id, title, artist, album);
        }
        let build = start.elapsed();
        assert_eq!(index.len(), N);

        let expected = [
            ("the", N),
            ("THE", N),
            ("the silver wolves", 100),
            ("wolves silver the", 100),
            ("silver", 2_500),
            ("wolves", 4_000),
            ("alpha", 10_000),
            ("silver wolves alpha", 10),
            ("42424", 1),
            ("4242", 11),
            ("12", 1_111),
            ("th", N),
            ("zzzz", 0),
            ("silver zzzz", 0),
        ];
        for (query, count) in expected {
            assert_eq!(index.search(query, 0, 10).1, count, "{query:?}");
        }

        let words: Vec<[Vec<String>; 3]> = songs
            .iter()
            .map(|song| {
                let split = |s: &str| normalize(s).split(' ').map(String::from).collect();
                [split(&song[1]), split(&song[2]), split(&song[3])]
            })
            .collect();
        let checked = [
            "the silver wolves",
            "silver",
            "cafe",
            "cafe love",
            "corazon ni",
            "silver wo",
            "love sil",
            "the",
            "ca",
            "12",
            "mellow dr",
            "deja vu",
        ];
        for query in checked {
            let want = reference(&songs, &words, query);
            let (page, total) = index.search(query, 0, 20);
            assert_eq!(total, want.len(), "{query:?}");
            assert_eq!(page, want[..want.len().min(20)], "{query:?}");
            if want.len() > 520 {
                assert_eq!(index.search(query, 500, 20).0, want[500..520], "{query:?}");
            }
        }

        // Timings: printed only (a debug build is many times slower than a release one).
        let queries = [
            "the",
            "th",
            "silver",
            "the silver wolves",
            "silver wo",
            "cafe love",
            "12",
            "42424",
            "mellow dr",
            "zzzz",
        ];
        let reps = if cfg!(debug_assertions) { 3 } else { 50 };
        println!("search: built an index of {N} songs in {build:?}");
        for query in queries {
            let start = Instant::now();
            let mut total = 0;
            for _ in 0..reps {
                total = black_box(index.search(black_box(query), 0, 20)).1;
            }
            println!(
                "search: {query:?}: {total} matches, {:?} per query (page of 20)",
                start.elapsed() / reps
            );
        }
        let start = Instant::now();
        black_box(index.search("the", 99_980, 20));
        println!("search: \"the\" last page: {:?}", start.elapsed());

        // Replace 1,000 songs (every 100th gets a new title), then remove them.
        let mut replace = Duration::ZERO;
        let mut remove = Duration::ZERO;
        for [id, _, artist, album] in songs.iter().step_by(100) {
            let start = Instant::now();
            index.insert(id, "Brand New Title", artist, album);
            replace += start.elapsed();
        }
        assert_eq!(index.len(), N);
        assert_eq!(index.search("brand new title", 0, 0).1, 1_000);
        assert_eq!(index.search("42400", 0, 0).1, 0);
        for [id, ..] in songs.iter().step_by(100) {
            let start = Instant::now();
            index.remove(id);
            remove += start.elapsed();
        }
        assert_eq!(index.len(), N - 1_000);
        assert_eq!(index.search("brand", 0, 0).1, 0);
        assert_eq!(index.search("the", 0, 0).1, N - 1_000);
        println!(
            "search: replace {:?} per song, remove {:?} per song (1,000 of each)",
            replace / 1_000,
            remove / 1_000
        );
    }
}
