//! OSV archives as osv.dev publishes them (one zip of OSV JSON records per
//! ecosystem, `<ecosystem>/all.zip`), read entry by entry under limits.
//!
//! Nothing is extracted to disk: each `*.json` entry is decompressed into memory,
//! one at a time, and handed to the caller. Every entry is bounded before and
//! while it is read: its name (no absolute path, no `..`, no NUL), its declared
//! and actual uncompressed size ([`Limits::max_entry_bytes`]), its compression
//! ratio ([`Limits::max_ratio`], against bombs) and the running total
//! ([`Limits::max_total_bytes`]). A bad entry is an [`EntryError`] for that entry
//! alone; the archive as a whole fails ([`ArchiveError`]) only when it cannot be
//! opened, holds too many entries, or the total would be crossed.
//!
//! Floor 1: the caller opens the file and hands in the reader; this module does
//! no I/O of its own.

use std::io::{Read, Seek};

/// Bounds on one archive. [`Limits::default`] suits osv.dev's exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest archive read, in bytes (the caller checks it against the file's
    /// size before opening; [`OsvArchive::open`] checks the reader's length).
    pub max_archive_bytes: u64,
    /// The most entries (files and directories) an archive may list.
    pub max_entries: usize,
    /// The largest uncompressed entry, in bytes.
    pub max_entry_bytes: u64,
    /// The most uncompressed bytes read from one archive, all entries together.
    pub max_total_bytes: u64,
    /// The highest uncompressed/compressed ratio of an entry larger than
    /// [`Limits::ratio_floor_bytes`].
    pub max_ratio: u64,
    /// Entries up to this uncompressed size are not ratio-checked (tiny files
    /// compress however they like and cost nothing).
    pub ratio_floor_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_archive_bytes: 2 << 30,
            max_entries: 1_000_000,
            max_entry_bytes: crate::osv::MAX_RECORD_BYTES as u64,
            max_total_bytes: 16 << 30,
            max_ratio: 100,
            ratio_floor_bytes: 1 << 20,
        }
    }
}

/// Why the archive as a whole could not be read (or read on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The archive is larger than [`Limits::max_archive_bytes`].
    #[error("the archive is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The reader could not be measured.
    #[error("cannot read the archive")]
    Io(#[source] std::io::Error),
    /// Not a zip archive, or its central directory is damaged.
    #[error("not a readable zip archive")]
    Zip(#[source] zip::result::ZipError),
    /// More entries than [`Limits::max_entries`].
    #[error("the archive lists {entries} entries, over the limit of {limit}")]
    TooManyEntries {
        /// How many it lists.
        entries: usize,
        /// The limit.
        limit: usize,
    },
    /// Reading on would cross [`Limits::max_total_bytes`].
    #[error(
        "reading entry {index} would take the archive's uncompressed total over {limit} bytes; \
         it and the entries after it were not read"
    )]
    TotalTooLarge {
        /// The entry that would cross the limit.
        index: usize,
        /// The limit.
        limit: u64,
    },
}

/// Why one entry was not read. The rest of the archive goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The name is absolute, climbs out with `..`, or holds a NUL or drive prefix.
    #[error("unsafe entry name {name:?} (absolute, `..`, NUL or drive prefix): not read")]
    UnsafeName {
        /// The name as stored (lossily decoded).
        name: String,
    },
    /// Declared or actual uncompressed size over [`Limits::max_entry_bytes`].
    #[error("uncompressed size {size} bytes is over the limit of {limit}: not read")]
    TooLarge {
        /// The size (declared, or read so far).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Uncompressed/compressed ratio over [`Limits::max_ratio`]: a likely bomb.
    #[error(
        "compression ratio {uncompressed}/{compressed} is over {limit}:1 (a zip bomb?): not read"
    )]
    Ratio {
        /// Uncompressed bytes (declared, or read so far).
        uncompressed: u64,
        /// Compressed bytes.
        compressed: u64,
        /// The limit.
        limit: u64,
    },
    /// Encrypted entries are not read.
    #[error("the entry is encrypted: not read")]
    Encrypted,
    /// The entry could not be decompressed (unsupported method, damaged data, a
    /// wrong checksum).
    #[error("cannot decompress the entry")]
    Zip(#[source] zip::result::ZipError),
    /// Reading the decompressed stream failed (damaged data, a wrong checksum).
    #[error("cannot decompress the entry")]
    Io(#[source] std::io::Error),
}

/// One entry of the archive, as [`OsvArchive::entry`] read it.
#[derive(Debug)]
pub enum Entry {
    /// A `*.json` file, read.
    Record {
        /// The entry's name.
        name: String,
        /// Its uncompressed bytes.
        bytes: Vec<u8>,
    },
    /// An entry that was not read, and why.
    Refused {
        /// The entry's name (lossily decoded).
        name: String,
        /// Why.
        error: EntryError,
    },
    /// A directory, or a file that is not `*.json`: not an OSV record.
    Ignored {
        /// The entry's name (lossily decoded).
        name: String,
    },
}

/// An opened archive; read its entries with [`OsvArchive::entry`] by index.
pub struct OsvArchive<R> {
    zip: zip::ZipArchive<R>,
    limits: Limits,
    /// Uncompressed bytes read so far.
    total: u64,
}

impl<R: Read + Seek> std::fmt::Debug for OsvArchive<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsvArchive")
            .field("entries", &self.zip.len())
            .field("limits", &self.limits)
            .field("total", &self.total)
            .finish()
    }
}

/// Whether an entry name is safe: relative, no `..` component, no NUL, no drive
/// prefix. `\` counts as a separator too.
pub fn safe_name(name: &str) -> bool {
    if name.is_empty() || name.contains('\0') || name.starts_with(['/', '\\']) {
        return false;
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return false;
    }
    !name.split(['/', '\\']).any(|c| c == "..")
}

impl<R: Read + Seek> OsvArchive<R> {
    /// Opens a zip archive: its size and entry count are checked, no entry is read.
    pub fn open(mut reader: R, limits: Limits) -> Result<Self, ArchiveError> {
        let size = reader
            .seek(std::io::SeekFrom::End(0))
            .map_err(ArchiveError::Io)?;
        if size > limits.max_archive_bytes {
            return Err(ArchiveError::TooLarge {
                size,
                limit: limits.max_archive_bytes,
            });
        }
        reader
            .seek(std::io::SeekFrom::Start(0))
            .map_err(ArchiveError::Io)?;
        let zip = zip::ZipArchive::new(reader).map_err(ArchiveError::Zip)?;
        if zip.len() > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                entries: zip.len(),
                limit: limits.max_entries,
            });
        }
        Ok(OsvArchive {
            zip,
            limits,
            total: 0,
        })
    }

    /// How many entries the archive lists.
    pub fn len(&self) -> usize {
        self.zip.len()
    }

    /// Whether the archive lists no entry.
    pub fn is_empty(&self) -> bool {
        self.zip.len() == 0
    }

    /// Uncompressed bytes read so far.
    pub fn total_read(&self) -> u64 {
        self.total
    }

    /// Reads entry `index` (`0..len()`). `Err` means the archive cannot be read on
    /// (the running total would cross its limit); a problem with this entry alone
    /// is an [`Entry::Refused`].
    pub fn entry(&mut self, index: usize) -> Result<Entry, ArchiveError> {
        let limits = self.limits;
        let file = match self.zip.by_index_raw(index) {
            Ok(f) => f,
            Err(error) => {
                return Ok(Entry::Refused {
                    name: format!("#{index}"),
                    error: EntryError::Zip(error),
                });
            }
        };
        let name = String::from_utf8_lossy(file.name_raw()).into_owned();
        if !safe_name(&name) {
            return Ok(Entry::Refused {
                error: EntryError::UnsafeName { name: name.clone() },
                name,
            });
        }
        if file.is_dir() || !name.to_ascii_lowercase().ends_with(".json") {
            return Ok(Entry::Ignored { name });
        }
        if file.encrypted() {
            return Ok(Entry::Refused {
                name,
                error: EntryError::Encrypted,
            });
        }
        let (declared, compressed) = (file.size(), file.compressed_size());
        if declared > limits.max_entry_bytes {
            return Ok(Entry::Refused {
                name,
                error: EntryError::TooLarge {
                    size: declared,
                    limit: limits.max_entry_bytes,
                },
            });
        }
        if let Some(error) = ratio_error(&limits, declared, compressed) {
            return Ok(Entry::Refused { name, error });
        }
        // The total is charged the most this entry may yield, so the limit holds
        // whatever the entry's header claims.
        let budget = limits.max_entry_bytes.min(ratio_cap(&limits, compressed));
        if self.total.saturating_add(declared) > limits.max_total_bytes {
            return Err(ArchiveError::TotalTooLarge {
                index,
                limit: limits.max_total_bytes,
            });
        }
        drop(file);
        let file = match self.zip.by_index(index) {
            Ok(f) => f,
            Err(error) => {
                return Ok(Entry::Refused {
                    name,
                    error: EntryError::Zip(error),
                });
            }
        };
        let room = limits.max_total_bytes.saturating_sub(self.total);
        let cap = budget.min(room);
        // The declared size is the archive's claim: reserve at most 64 KiB on its word.
        let reserve = declared.min(cap).min(64 << 10);
        let mut bytes = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
        let read = file.take(cap.saturating_add(1)).read_to_end(&mut bytes);
        let got = bytes.len() as u64;
        self.total = self.total.saturating_add(got);
        if let Err(e) = read {
            return Ok(Entry::Refused {
                name,
                error: EntryError::Io(e),
            });
        }
        if got > cap {
            if got > limits.max_entry_bytes {
                return Ok(Entry::Refused {
                    name,
                    error: EntryError::TooLarge {
                        size: got,
                        limit: limits.max_entry_bytes,
                    },
                });
            }
            if got > room {
                return Err(ArchiveError::TotalTooLarge {
                    index,
                    limit: limits.max_total_bytes,
                });
            }
            return Ok(Entry::Refused {
                name,
                error: EntryError::Ratio {
                    uncompressed: got,
                    compressed,
                    limit: limits.max_ratio,
                },
            });
        }
        Ok(Entry::Record { name, bytes })
    }
}

/// The most an entry of `compressed` bytes may expand to under the ratio limit
/// (entries up to the floor are always allowed).
fn ratio_cap(limits: &Limits, compressed: u64) -> u64 {
    compressed
        .max(1)
        .saturating_mul(limits.max_ratio)
        .max(limits.ratio_floor_bytes)
}

fn ratio_error(limits: &Limits, uncompressed: u64, compressed: u64) -> Option<EntryError> {
    (uncompressed > ratio_cap(limits, compressed)).then_some(EntryError::Ratio {
        uncompressed,
        compressed,
        limit: limits.max_ratio,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::{Cursor, Write};
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(bytes).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    fn read_all(bytes: Vec<u8>, limits: Limits) -> (Vec<Entry>, Option<ArchiveError>) {
        let mut a = OsvArchive::open(Cursor::new(bytes), limits).unwrap();
        let mut out = Vec::new();
        for i in 0..a.len() {
            match a.entry(i) {
                Ok(e) => out.push(e),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[test]
    fn names_are_checked() {
        for ok in ["a.json", "dir/a.json", "a..b.json", "x/..y/z.json"] {
            assert!(safe_name(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd.json",
            "\\x.json",
            "../a.json",
            "a/../../b.json",
            "a\\..\\b.json",
            "C:x.json",
            "a\0b.json",
            "..",
        ] {
            assert!(!safe_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn records_are_read_and_the_rest_is_refused_or_ignored() {
        let zeros = vec![b' '; 4 << 20];
        let bytes = zip_of(&[
            ("osv/", b""),
            ("osv/A-1.json", b"{\"id\":\"A-1\"}"),
            ("../evil.json", b"{}"),
            ("/abs.json", b"{}"),
            ("README.md", b"hello"),
            ("bomb.json", &zeros),
            ("osv/B-2.json", b"{\"id\":\"B-2\"}"),
        ]);
        let (entries, stop) = read_all(bytes, Limits::default());
        assert!(stop.is_none());
        let summary: Vec<String> = entries
            .iter()
            .map(|e| match e {
                Entry::Record { name, .. } => format!("record {name}"),
                Entry::Refused { name, error } => format!("refused {name}: {error}"),
                Entry::Ignored { name } => format!("ignored {name}"),
            })
            .collect();
        assert_eq!(summary[0], "ignored osv/");
        assert_eq!(summary[1], "record osv/A-1.json");
        assert!(
            summary[2].starts_with("refused ../evil.json: unsafe"),
            "{summary:?}"
        );
        assert!(
            summary[3].starts_with("refused /abs.json: unsafe"),
            "{summary:?}"
        );
        assert_eq!(summary[4], "ignored README.md");
        assert!(summary[5].contains("compression ratio"), "{summary:?}");
        assert_eq!(summary[6], "record osv/B-2.json");
    }

    #[test]
    fn an_entry_over_the_size_limit_is_refused() {
        let big = (0..64 * 1024u32)
            .flat_map(u32::to_le_bytes)
            .collect::<Vec<u8>>();
        let limits = Limits {
            max_entry_bytes: 1000,
            ..Limits::default()
        };
        let (entries, _) = read_all(zip_of(&[("big.json", &big), ("ok.json", b"{}")]), limits);
        assert!(
            matches!(
                &entries[0],
                Entry::Refused {
                    error: EntryError::TooLarge { .. },
                    ..
                }
            ),
            "{entries:?}"
        );
        assert!(matches!(&entries[1], Entry::Record { .. }));
    }

    /// A header that understates the uncompressed size is caught while reading.
    #[test]
    fn a_lying_header_is_caught_while_reading() {
        let payload = vec![b'a'; 3 << 20];
        let mut bytes = zip_of(&[("liar.json", &payload)]);
        // Patch the declared uncompressed size (local header offset 22, central
        // directory entry offset 24) down to 10 bytes.
        let patch = |bytes: &mut Vec<u8>, sig: [u8; 4], off: usize| {
            let at = bytes.windows(4).position(|w| w == sig).unwrap();
            bytes[at + off..at + off + 4].copy_from_slice(&10u32.to_le_bytes());
        };
        patch(&mut bytes, [0x50, 0x4b, 0x03, 0x04], 22);
        patch(&mut bytes, [0x50, 0x4b, 0x01, 0x02], 24);
        let (entries, stop) = read_all(bytes, Limits::default());
        assert!(stop.is_none());
        assert!(matches!(&entries[0], Entry::Refused { .. }), "{entries:?}");
    }

    #[test]
    fn the_total_stops_the_archive() {
        let rec = vec![b'{'; 600];
        let limits = Limits {
            max_total_bytes: 1000,
            ..Limits::default()
        };
        let (entries, stop) = read_all(zip_of(&[("a.json", &rec), ("b.json", &rec)]), limits);
        assert_eq!(entries.len(), 1);
        assert!(matches!(
            stop,
            Some(ArchiveError::TotalTooLarge { index: 1, .. })
        ));
    }

    #[test]
    fn too_many_entries_or_not_a_zip_fail_whole() {
        let limits = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        let bytes = zip_of(&[("a.json", b"{}"), ("b.json", b"{}")]);
        assert!(matches!(
            OsvArchive::open(Cursor::new(bytes), limits),
            Err(ArchiveError::TooManyEntries { entries: 2, .. })
        ));
        assert!(matches!(
            OsvArchive::open(Cursor::new(b"PK not really".to_vec()), Limits::default()),
            Err(ArchiveError::Zip(_))
        ));
        let limits = Limits {
            max_archive_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            OsvArchive::open(Cursor::new(vec![0u8; 11]), limits),
            Err(ArchiveError::TooLarge { size: 11, .. })
        ));
    }
}
