//! The log directory: open (with recovery), durable appends, reads, proofs.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_tlog::checkpoint::{self, Checkpoint, CheckpointError};
use cairn_tlog::merkle::{self, Hash};
use cairn_tlog::note::{self, NoteError, NoteSigner, Verifier};
use cairn_tlog::proof::{self, ProveError};
use cairn_tlog::tiles::{self, TILE_WIDTH, TileError, TileReadError, TileReader};

const CHECKPOINT: &str = "checkpoint";
const CHECKPOINT_TMP: &str = ".checkpoint.tmp";
const LOCK: &str = ".lock";
/// The most entries one append may carry.
pub const MAX_BATCH: usize = 1 << 16;

/// Why a file of the log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is malformed")]
    Tile {
        path: PathBuf,
        #[source]
        source: TileError,
    },
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("the log was opened read-only")]
    ReadOnly,
    #[error("the log in {0} is in use by another process")]
    Locked(PathBuf),
    #[error("the log's checkpoint is invalid")]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot sign the checkpoint")]
    Sign(#[from] NoteError),
    #[error("the log's origin is `{current}`; a new key must keep it, not name `{next}`")]
    OriginChange { current: String, next: String },
    #[error("the new checkpoint key is the key the log already has")]
    SameKey,
    #[error("{dir} has tiles but no checkpoint; refusing to start a new log over them")]
    MissingCheckpoint { dir: PathBuf },
    #[error("the tiles on disk do not match the checkpoint's root (size {size})")]
    RootMismatch { size: u64 },
    #[error("entry {index} is not in the log of size {size}")]
    NoSuchEntry { index: u64, size: u64 },
    #[error("an entry of {0} bytes is larger than the 65535 bytes an entry bundle can hold")]
    EntryTooLarge(usize),
    #[error("a batch of {0} entries is larger than {MAX_BATCH}")]
    BatchTooLarge(usize),
    #[error("cannot build the proof")]
    Prove(#[from] ProveError<TileReadError<ReadError>>),
}

/// What changes with each append: the right edge of the tree.
#[derive(Debug, Clone)]
struct State {
    size: u64,
    /// Per tile level, the hashes of the rightmost, incomplete tile.
    edges: Vec<Vec<Hash>>,
    /// The entries of the rightmost, incomplete entry bundle.
    bundle: Vec<Vec<u8>>,
    root: Hash,
    /// The signed checkpoint for `size`, as published.
    signed: String,
}

/// An open log directory: for appending (holding the append lock), or
/// read-only (no lock; it reads what its checkpoint at open time covers,
/// which an appender never rewrites).
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    signer: Option<Arc<dyn NoteSigner>>,
    verifier: Verifier,
    _lock: Option<File>,
    state: State,
    known_dirs: HashSet<PathBuf>,
}

fn read_file(path: &Path) -> Result<Vec<u8>, ReadError> {
    std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads hash tile (level, index) of `width` hashes from `dir`.
pub(crate) fn read_tile(
    dir: &Path,
    level: u8,
    index: u64,
    width: u64,
) -> Result<Vec<Hash>, ReadError> {
    let path = dir.join(tiles::tile_path(level, index, width));
    let data = read_file(&path)?;
    tiles::parse_tile(&data, width).map_err(|source| ReadError::Tile { path, source })
}

/// Reads entry bundle `index` of `width` entries from `dir`.
pub(crate) fn read_bundle(dir: &Path, index: u64, width: u64) -> Result<Vec<Vec<u8>>, ReadError> {
    let path = dir.join(tiles::entries_path(index, width));
    let data = read_file(&path)?;
    tiles::parse_bundle(&data, width).map_err(|source| ReadError::Tile { path, source })
}

/// The root of the tree whose right edge is `edges` (highest level first:
/// each edge tile covers the leaves just left of the one below it).
fn root_of_edges(edges: &[Vec<Hash>]) -> Hash {
    let mut subtrees: Vec<Hash> = Vec::new();
    for edge in edges.iter().rev() {
        let mut rest: &[Hash] = edge;
        while !rest.is_empty() {
            let take = 1usize << (usize::BITS - 1 - rest.len().leading_zeros());
            subtrees.push(merkle::root_from_leaves(&rest[..take]));
            rest = &rest[take..];
        }
    }
    let mut acc: Option<Hash> = None;
    for h in subtrees.iter().rev() {
        acc = Some(match acc {
            None => *h,
            Some(right) => merkle::node_hash(h, &right),
        });
    }
    acc.unwrap_or_else(merkle::empty_root)
}

fn sync_dir(path: &Path) -> Result<(), LogError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|source| LogError::Write {
            path: path.to_owned(),
            source,
        })
}

impl Log {
    /// Opens the log in `dir` (creating it, with an empty checkpoint, if it
    /// does not exist), takes the append lock, and recovers the right edge
    /// of the tree from the tiles named by the published checkpoint. The
    /// checkpoint's origin is the signer's name.
    pub fn open<S: NoteSigner + 'static>(dir: &Path, signer: S) -> Result<Log, LogError> {
        Self::open_shared(dir, Arc::new(signer))
    }

    /// [`Log::open`] with a signer shared with the caller (a key in a token,
    /// opened once and used again when the log is reopened).
    pub fn open_shared(dir: &Path, signer: Arc<dyn NoteSigner>) -> Result<Log, LogError> {
        let write_err = |path: &Path| {
            let path = path.to_owned();
            move |source| LogError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(write_err(dir))?;
        let lock_path = dir.join(LOCK);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(write_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(LogError::Locked(dir.to_owned())),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(LogError::Write {
                    path: lock_path,
                    source,
                });
            }
        }
        let cp_path = dir.join(CHECKPOINT);
        let log = match std::fs::read(&cp_path) {
            Ok(signed) => {
                let verifier = signer.verifier();
                let opened =
                    checkpoint::open(&signed, signer.name(), std::slice::from_ref(&verifier))?;
                let state = recover(dir, &opened.checkpoint, signed)?;
                Log {
                    dir: dir.to_owned(),
                    signer: Some(signer),
                    verifier,
                    _lock: Some(lock),
                    state,
                    known_dirs: HashSet::new(),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if dir.join("tile").exists() {
                    return Err(LogError::MissingCheckpoint {
                        dir: dir.to_owned(),
                    });
                }
                let mut log = Log {
                    dir: dir.to_owned(),
                    verifier: signer.verifier(),
                    signer: Some(signer),
                    _lock: Some(lock),
                    state: State {
                        size: 0,
                        edges: Vec::new(),
                        bundle: Vec::new(),
                        root: merkle::empty_root(),
                        signed: String::new(),
                    },
                    known_dirs: HashSet::new(),
                };
                let signed = log.publish(0, merkle::empty_root())?;
                log.state.signed = signed;
                log
            }
            Err(source) => {
                return Err(LogError::Read(ReadError::Io {
                    path: cp_path,
                    source,
                }));
            }
        };
        log.remove_unpublished();
        Ok(log)
    }

    /// Opens the log in `dir` for reading, at its current checkpoint, which
    /// must verify with `verifier` (whose name is the origin). Takes no
    /// lock, so it works while another process appends.
    pub fn open_read_only(dir: &Path, verifier: Verifier) -> Result<Log, LogError> {
        let cp_path = dir.join(CHECKPOINT);
        let signed = std::fs::read(&cp_path).map_err(|source| ReadError::Io {
            path: cp_path,
            source,
        })?;
        let opened = checkpoint::open(&signed, verifier.name(), std::slice::from_ref(&verifier))?;
        let state = recover(dir, &opened.checkpoint, signed)?;
        Ok(Log {
            dir: dir.to_owned(),
            signer: None,
            verifier,
            _lock: None,
            state,
            known_dirs: HashSet::new(),
        })
    }

    /// The directory served as the tlog-tiles API.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The number of entries covered by the published checkpoint.
    pub fn size(&self) -> u64 {
        self.state.size
    }

    /// The root of the tree at [`Log::size`].
    pub fn root(&self) -> Hash {
        self.state.root
    }

    /// The published signed checkpoint (note text with signature).
    pub fn checkpoint(&self) -> &str {
        &self.state.signed
    }

    /// The checkpoint body at [`Log::size`].
    pub fn checkpoint_body(&self) -> Checkpoint {
        Checkpoint {
            origin: self.verifier.name().to_owned(),
            size: self.state.size,
            root: self.state.root,
            extensions: Vec::new(),
        }
    }

    /// The origin line of this log's checkpoints (the key's name).
    pub fn origin(&self) -> &str {
        self.verifier.name()
    }

    /// The verifier key of this log's checkpoints.
    pub fn verifier(&self) -> Verifier {
        self.verifier.clone()
    }

    /// Appends `entries` durably and returns their indices. When this
    /// returns `Ok`, the entries are in fsynced bundles and tiles and a
    /// checkpoint covering them is published. On `Err` nothing is
    /// published and the in-memory state is unchanged.
    pub fn append<E: AsRef<[u8]>>(&mut self, entries: &[E]) -> Result<Vec<u64>, LogError> {
        if self.signer.is_none() {
            return Err(LogError::ReadOnly);
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if entries.len() > MAX_BATCH {
            return Err(LogError::BatchTooLarge(entries.len()));
        }
        if let Some(e) = entries
            .iter()
            .find(|e| e.as_ref().len() > tiles::MAX_ENTRY_BYTES)
        {
            return Err(LogError::EntryTooLarge(e.as_ref().len()));
        }
        let mut next = self.state.clone();
        let mut writes: Vec<(String, Vec<u8>)> = Vec::new();
        let mut dirty_levels: Vec<bool> = Vec::new();
        let first = next.size;
        for entry in entries {
            let entry = entry.as_ref();
            let index = next.size;
            next.bundle.push(entry.to_vec());
            next.size += 1;
            if next.bundle.len() as u64 == TILE_WIDTH {
                let bundle = std::mem::take(&mut next.bundle);
                writes.push((
                    tiles::entries_path(index / TILE_WIDTH, TILE_WIDTH),
                    tiles::encode_bundle(&bundle)
                        .map_err(|_| LogError::EntryTooLarge(entry.len()))?,
                ));
            }
            // Add the leaf hash at level 0 and carry full tiles upwards.
            let mut hash = merkle::leaf_hash(entry);
            let mut level = 0usize;
            loop {
                if next.edges.len() == level {
                    next.edges.push(Vec::new());
                }
                if dirty_levels.len() <= level {
                    dirty_levels.resize(level + 1, false);
                }
                dirty_levels[level] = true;
                next.edges[level].push(hash);
                if next.edges[level].len() as u64 != TILE_WIDTH {
                    break;
                }
                let full = std::mem::take(&mut next.edges[level]);
                let tile_index = (index >> (8 * level)) / TILE_WIDTH;
                writes.push((
                    tiles::tile_path(level as u8, tile_index, TILE_WIDTH),
                    tiles::encode_tile(&full),
                ));
                hash = merkle::root_from_leaves(&full);
                level += 1;
            }
        }
        // Partial tiles and bundle at the new size.
        for (level, dirty) in dirty_levels.iter().enumerate() {
            let edge = &next.edges[level];
            if *dirty && !edge.is_empty() {
                let tile_index = (next.size >> (8 * level)) / TILE_WIDTH;
                writes.push((
                    tiles::tile_path(level as u8, tile_index, edge.len() as u64),
                    tiles::encode_tile(edge),
                ));
            }
        }
        if !next.bundle.is_empty() {
            writes.push((
                tiles::entries_path(next.size / TILE_WIDTH, next.bundle.len() as u64),
                tiles::encode_bundle(&next.bundle).map_err(|_| LogError::EntryTooLarge(0))?,
            ));
        }
        next.root = root_of_edges(&next.edges);
        next.signed = self.sign(next.size, next.root)?;
        // Phase 1 writes the checkpoint's temp file along with the tiles;
        // it is only published by the rename after everything is durable.
        writes.push((CHECKPOINT_TMP.to_owned(), next.signed.clone().into_bytes()));
        self.write_durably(&writes)?;
        self.rename_checkpoint()?;
        self.state = next;
        Ok((first..self.state.size).collect())
    }

    /// Writes every file and fsyncs it, then fsyncs every directory that
    /// gained an entry. Files are written in parallel so that their fsyncs
    /// share journal commits.
    fn write_durably(&mut self, writes: &[(String, Vec<u8>)]) -> Result<(), LogError> {
        let mut dirs_to_sync: HashSet<PathBuf> = HashSet::new();
        let mut new_dirs: Vec<PathBuf> = Vec::new();
        let mut paths = Vec::with_capacity(writes.len());
        for (rel, _) in writes {
            let path = self.dir.join(rel);
            let parent = path.parent().unwrap_or(&self.dir).to_owned();
            self.ensure_dir(&parent, &mut dirs_to_sync, &mut new_dirs)?;
            // The temp checkpoint's directory entry is made durable by the
            // fsync after its rename.
            if rel != CHECKPOINT_TMP {
                dirs_to_sync.insert(parent);
            }
            paths.push(path);
        }
        let write_one = |path: &Path, data: &[u8]| -> Result<(), LogError> {
            let err = |source| LogError::Write {
                path: path.to_owned(),
                source,
            };
            let mut f = File::create(path).map_err(err)?;
            f.write_all(data).map_err(err)?;
            f.sync_data().map_err(err)
        };
        std::thread::scope(|scope| {
            let handles: Vec<_> = paths
                .iter()
                .zip(writes)
                .skip(1)
                .map(|(path, (_, data))| scope.spawn(move || write_one(path, data)))
                .collect();
            let mut result = match (paths.first(), writes.first()) {
                (Some(path), Some((_, data))) => write_one(path, data),
                _ => Ok(()),
            };
            for h in handles {
                let r = h.join().unwrap_or_else(|_| {
                    Err(LogError::Write {
                        path: self.dir.clone(),
                        source: std::io::Error::other("writer thread panicked"),
                    })
                });
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })?;
        // Phase 2: every directory that gained an entry, in parallel.
        let dirs: Vec<PathBuf> = dirs_to_sync.into_iter().collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = dirs
                .iter()
                .skip(1)
                .map(|d| scope.spawn(move || sync_dir(d)))
                .collect();
            let mut result = dirs.first().map_or(Ok(()), |d| sync_dir(d));
            for h in handles {
                let r = h.join().unwrap_or_else(|_| {
                    Err(LogError::Write {
                        path: self.dir.clone(),
                        source: std::io::Error::other("fsync thread panicked"),
                    })
                });
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })?;
        // Only now are the new directories durable; until then a failed
        // batch leaves them to be synced again by the next one.
        self.known_dirs.extend(new_dirs);
        Ok(())
    }

    /// Creates `dir` and its missing parents. The first time this process
    /// writes into a directory, the parent of it and of every ancestor up to
    /// the log's root is queued for fsync, whether or not this call created
    /// them (a batch that failed after `mkdir` left them unsynced).
    fn ensure_dir(
        &self,
        dir: &Path,
        to_sync: &mut HashSet<PathBuf>,
        new_dirs: &mut Vec<PathBuf>,
    ) -> Result<(), LogError> {
        if self.known_dirs.contains(dir) {
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|source| LogError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let mut cur = dir;
        while cur != self.dir.as_path() && !self.known_dirs.contains(cur) {
            let Some(parent) = cur.parent() else { break };
            to_sync.insert(parent.to_owned());
            new_dirs.push(cur.to_owned());
            cur = parent;
        }
        Ok(())
    }

    /// Signs the checkpoint for (size, root) (tlog-checkpoint, signed-note).
    fn sign(&self, size: u64, root: Hash) -> Result<String, LogError> {
        let signer = self.signer.as_ref().ok_or(LogError::ReadOnly)?;
        let body = Checkpoint {
            origin: signer.name().to_owned(),
            size,
            root,
            extensions: Vec::new(),
        };
        Ok(note::sign_note(&body.to_text(), &[signer.as_ref()])?)
    }

    /// Hands the log to a new checkpoint key of the same name (origin): the
    /// checkpoint at the current size is published again signed by the old
    /// key and the new one (signed-note: a note may carry many signatures),
    /// so whoever trusts the old key sees it vouch for the new one at that
    /// tree; every later checkpoint is signed by the new key only. On `Err`
    /// nothing was published and the old key still signs.
    pub fn rotate_signer(&mut self, next: Arc<dyn NoteSigner>) -> Result<(), LogError> {
        let current = self.signer.as_ref().ok_or(LogError::ReadOnly)?;
        if next.name() != current.name() {
            return Err(LogError::OriginChange {
                current: current.name().to_owned(),
                next: next.name().to_owned(),
            });
        }
        if next.verifier() == current.verifier() {
            return Err(LogError::SameKey);
        }
        let body = Checkpoint {
            origin: current.name().to_owned(),
            size: self.state.size,
            root: self.state.root,
            extensions: Vec::new(),
        };
        let signed = note::sign_note(&body.to_text(), &[current.as_ref(), next.as_ref()])?;
        self.write_durably(&[(CHECKPOINT_TMP.to_owned(), signed.clone().into_bytes())])?;
        self.rename_checkpoint()?;
        self.verifier = next.verifier();
        self.signer = Some(next);
        self.state.signed = signed;
        Ok(())
    }

    /// Publishes the fsynced temp checkpoint: rename over `checkpoint`,
    /// then fsync the directory so the rename itself is durable.
    fn rename_checkpoint(&self) -> Result<(), LogError> {
        let tmp = self.dir.join(CHECKPOINT_TMP);
        let dest = self.dir.join(CHECKPOINT);
        std::fs::rename(&tmp, &dest).map_err(|source| LogError::Write { path: dest, source })?;
        sync_dir(&self.dir)
    }

    /// Signs and atomically publishes the checkpoint for (size, root):
    /// write a temp file, fsync, rename over `checkpoint`, fsync the dir.
    fn publish(&mut self, size: u64, root: Hash) -> Result<String, LogError> {
        let signed = self.sign(size, root)?;
        self.write_durably(&[(CHECKPOINT_TMP.to_owned(), signed.clone().into_bytes())])?;
        self.rename_checkpoint()?;
        Ok(signed)
    }

    /// Removes what a crash between writing a batch's tiles and publishing
    /// its checkpoint left beyond the published size: partial tiles and
    /// bundles wider than the right edge, and every tile and bundle of the
    /// indexes past it that the batch reached (a batch may cross tiles). The
    /// directory then serves nothing unpublished, and an old partial tile can
    /// never disagree with what the log later writes at its place.
    /// Best effort: such files are never read by this log, and any it
    /// needs again are rewritten before they are published.
    fn remove_unpublished(&self) {
        let size = self.state.size;
        let mut level: u8 = 0;
        loop {
            let shift = 8 * u32::from(level);
            let count = size >> shift;
            let index = count / TILE_WIDTH;
            let width = count % TILE_WIDTH;
            let full = self.dir.join(tiles::tile_path(level, index, TILE_WIDTH));
            remove_wider(&full, width);
            if level == 0 {
                let bundle = self.dir.join(tiles::entries_path(index, TILE_WIDTH));
                remove_wider(&bundle, width);
            }
            // Past the edge: a batch writes every tile it crosses, so its
            // leftovers are contiguous from `index + 1`; it is at most
            // MAX_BATCH entries long.
            let last = ((size + MAX_BATCH as u64) >> shift) / TILE_WIDTH;
            for past in index + 1..=last {
                let full = self.dir.join(tiles::tile_path(level, past, TILE_WIDTH));
                let mut any = remove_tile_files(&full);
                if level == 0 {
                    let bundle = self.dir.join(tiles::entries_path(past, TILE_WIDTH));
                    any |= remove_tile_files(&bundle);
                }
                if !any {
                    break;
                }
            }
            if count == 0 || level == 7 {
                break;
            }
            level += 1;
        }
    }

    /// Entry `index`, if it is covered by the published checkpoint.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LogError> {
        let size = self.state.size;
        if index >= size {
            return Err(LogError::NoSuchEntry { index, size });
        }
        let bundle_index = index / TILE_WIDTH;
        let offset = (index % TILE_WIDTH) as usize;
        if bundle_index == size / TILE_WIDTH {
            return self
                .state
                .bundle
                .get(offset)
                .cloned()
                .ok_or(LogError::NoSuchEntry { index, size });
        }
        let bundle = read_bundle(&self.dir, bundle_index, TILE_WIDTH)?;
        bundle
            .into_iter()
            .nth(offset)
            .ok_or(LogError::NoSuchEntry { index, size })
    }

    /// Tile hashes for a tree of size ≤ [`Log::size`]: complete tiles from
    /// disk, the right edge from memory (it holds every older prefix).
    fn fetch(&self, level: u8, index: u64, width: u64) -> Result<Vec<Hash>, ReadError> {
        let count = self.state.size >> (8 * u32::from(level));
        let mut hashes = if index < count / TILE_WIDTH {
            read_tile(&self.dir, level, index, TILE_WIDTH)?
        } else {
            self.state
                .edges
                .get(usize::from(level))
                .cloned()
                .unwrap_or_default()
        };
        if (hashes.len() as u64) < width {
            return Err(ReadError::Tile {
                path: self.dir.join(tiles::tile_path(level, index, width)),
                source: TileError::TileSize {
                    width,
                    want: width as usize * 32,
                    got: hashes.len() * 32,
                },
            });
        }
        hashes.truncate(width as usize);
        Ok(hashes)
    }

    fn reader(
        &self,
        size: u64,
    ) -> TileReader<impl Fn(u8, u64, u64) -> Result<Vec<Hash>, ReadError> + '_> {
        TileReader::new(size, move |l, i, w| self.fetch(l, i, w))
    }

    fn check_size(&self, size: u64) -> Result<(), LogError> {
        if size > self.state.size {
            return Err(LogError::NoSuchEntry {
                index: size.saturating_sub(1),
                size: self.state.size,
            });
        }
        Ok(())
    }

    /// The inclusion proof of entry `index` in the tree of `size`
    /// (RFC 9162 §2.1.3.1).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(size)?;
        Ok(proof::inclusion_proof(&self.reader(size), index, size)?)
    }

    /// The consistency proof from `old` to `new` (RFC 9162 §2.1.4.1).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        self.check_size(new)?;
        Ok(proof::consistency_proof(&self.reader(new), old, new)?)
    }

    /// The root of the tree of `size` ≤ [`Log::size`].
    pub fn root_at(&self, size: u64) -> Result<Hash, LogError> {
        self.check_size(size)?;
        Ok(proof::tree_root(&self.reader(size), size)?)
    }
}

/// Removes the full tile (or bundle) `full` and every partial of it
/// (`<full>.p/<W>`); whether there was anything to remove.
fn remove_tile_files(full: &Path) -> bool {
    let mut any = std::fs::remove_file(full).is_ok();
    let mut partial_dir = full.as_os_str().to_owned();
    partial_dir.push(".p");
    let partial_dir = PathBuf::from(partial_dir);
    if let Ok(entries) = std::fs::read_dir(&partial_dir) {
        for entry in entries.flatten() {
            any |= std::fs::remove_file(entry.path()).is_ok();
        }
        let _ = std::fs::remove_dir(&partial_dir);
    }
    any
}

/// Removes `<tile>.p/<W>` for every W greater than `width` and, when the
/// tile is partial (`width` < 256), the full tile file itself.
fn remove_wider(full: &Path, width: u64) {
    let _ = std::fs::remove_file(full);
    let mut partial_dir = full.as_os_str().to_owned();
    partial_dir.push(".p");
    let Ok(entries) = std::fs::read_dir(PathBuf::from(&partial_dir)) else {
        return;
    };
    for entry in entries.flatten() {
        let wider = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok())
            .is_none_or(|w| w > width);
        if wider {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Rebuilds the right edge at the checkpoint's size from the tiles it
/// names, and checks that they hash to its root.
fn recover(dir: &Path, cp: &Checkpoint, signed: Vec<u8>) -> Result<State, LogError> {
    let size = cp.size;
    let mut edges = Vec::new();
    let mut level: u8 = 0;
    while level < 8 {
        let count = size >> (8 * u32::from(level));
        if count == 0 {
            break;
        }
        let width = count % TILE_WIDTH;
        if width == 0 {
            edges.push(Vec::new());
        } else {
            edges.push(read_tile(dir, level, count / TILE_WIDTH, width)?);
        }
        level += 1;
    }
    let width = size % TILE_WIDTH;
    let bundle = if width == 0 {
        Vec::new()
    } else {
        read_bundle(dir, size / TILE_WIDTH, width)?
    };
    let edge0 = edges.first().map(Vec::as_slice).unwrap_or_default();
    let bundle_hashes: Vec<Hash> = bundle.iter().map(|e| merkle::leaf_hash(e)).collect();
    if bundle_hashes != edge0 {
        return Err(LogError::RootMismatch { size });
    }
    let root = root_of_edges(&edges);
    if root != cp.root {
        return Err(LogError::RootMismatch { size });
    }
    let signed =
        String::from_utf8(signed).map_err(|_| CheckpointError::Note(NoteError::NotUtf8))?;
    Ok(State {
        size,
        edges,
        bundle,
        root,
        signed,
    })
}
