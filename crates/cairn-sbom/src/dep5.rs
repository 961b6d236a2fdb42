//! A Debian package's licence from its machine-readable copyright file
//! (DEP-5, <https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/>),
//! `usr/share/doc/<package>/copyright`: the `License:` synopsis of every `Files:`
//! paragraph, each Debian short name mapped to its SPDX id, the paragraphs joined
//! with `AND` (the package holds all those files). A name without a known SPDX
//! id, or a free-form (non-DEP-5) file, gives [`Licence::Unknown`] with what the
//! file says: a finding for the licence policy, never a guess.

use crate::licence::{Licence, parse_licence};

/// Debian short names (DEP-5 "License short name") and their SPDX ids; matched
/// case-insensitively.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("Apache-2", "Apache-2.0"),
    ("Apache-2.0", "Apache-2.0"),
    ("Artistic", "Artistic-1.0-Perl"),
    ("Artistic-1.0", "Artistic-1.0"),
    ("Artistic-2.0", "Artistic-2.0"),
    ("BSD-2-clause", "BSD-2-Clause"),
    ("BSD-3-clause", "BSD-3-Clause"),
    ("BSD-4-clause", "BSD-4-Clause"),
    ("CC0-1.0", "CC0-1.0"),
    ("Expat", "MIT"),
    ("MIT", "MIT"),
    ("ISC", "ISC"),
    ("Zlib", "Zlib"),
    ("X11", "X11"),
    ("FSFUL", "FSFUL"),
    ("FSFULLR", "FSFULLR"),
    ("MPL-1.1", "MPL-1.1"),
    ("MPL-2.0", "MPL-2.0"),
    ("GPL-1", "GPL-1.0-only"),
    ("GPL-1+", "GPL-1.0-or-later"),
    ("GPL-2", "GPL-2.0-only"),
    ("GPL-2+", "GPL-2.0-or-later"),
    ("GPL-3", "GPL-3.0-only"),
    ("GPL-3+", "GPL-3.0-or-later"),
    ("LGPL-2", "LGPL-2.0-only"),
    ("LGPL-2+", "LGPL-2.0-or-later"),
    ("LGPL-2.1", "LGPL-2.1-only"),
    ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("LGPL-3", "LGPL-3.0-only"),
    ("LGPL-3+", "LGPL-3.0-or-later"),
    ("AGPL-3", "AGPL-3.0-only"),
    ("AGPL-3+", "AGPL-3.0-or-later"),
    ("GFDL-1.2", "GFDL-1.2-only"),
    ("GFDL-1.2+", "GFDL-1.2-or-later"),
    ("GFDL-1.3", "GFDL-1.3-only"),
    ("GFDL-1.3+", "GFDL-1.3-or-later"),
];

/// At most this many `Files:` paragraphs are read (perl's has ~700 lines of them).
const MAX_PARAGRAPHS: usize = 10_000;

fn spdx_id(short: &str) -> Option<&'static str> {
    SHORT_NAMES
        .iter()
        .find(|(d, _)| d.eq_ignore_ascii_case(short))
        .map(|(_, s)| *s)
}

/// Exceptions as DEP-5 synopses name them (`GPL-3+ with Bison exception`).
const EXCEPTIONS: &[(&str, &str)] = &[
    ("Bison", "Bison-exception-2.2"),
    ("Libtool", "Libtool-exception"),
    ("Texinfo", "Texinfo-exception"),
];

/// One synopsis (`GPL-2+ or Artistic`, `LGPL-3+ or GPL-2+`, `GPL-3+ with Bison
/// exception`) as an SPDX expression; `None` when a name or an exception has no
/// known SPDX id or the words do not alternate name / operator.
fn synopsis(text: &str) -> Option<String> {
    let text = text.replace(',', " ");
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let mut id = spdx_id(words.get(i)?)?.to_owned();
        i += 1;
        if words.get(i).is_some_and(|w| w.eq_ignore_ascii_case("with")) {
            let name = words.get(i + 1)?;
            if !words.get(i + 2)?.eq_ignore_ascii_case("exception") {
                return None;
            }
            let (_, exception) = EXCEPTIONS
                .iter()
                .find(|(d, _)| d.eq_ignore_ascii_case(name))?;
            id = format!("{id} WITH {exception}");
            i += 3;
        }
        out.push(id);
        let Some(op) = words.get(i) else {
            break;
        };
        out.push(match op.to_ascii_lowercase().as_str() {
            "or" => "OR".to_owned(),
            "and" => "AND".to_owned(),
            _ => return None,
        });
        i += 1;
    }
    Some(out.join(" "))
}

/// The licence a copyright file states (see the module's docs).
///
/// One pass over the file's lines: a paragraph ends at an empty line (two
/// consecutive `\n`: a CRLF file's `\r\n\r\n` separates nothing), blank
/// paragraphs are skipped; the first is the header, and each later one (at
/// most [`MAX_PARAGRAPHS`]) counts when it has a `Files:` line, by its first
/// `License:` line. (Splitting the text at `\n\n` left to right leaves an
/// empty line at the start of a paragraph after three line ends in a row:
/// an empty line matches nothing, so the answer is the same.)
pub fn licence<'a>(text: &'a str) -> Licence {
    /// What one paragraph holds that matters here.
    #[derive(Default)]
    struct Para<'a> {
        blank: bool,
        format: bool,
        files: bool,
        licence: Option<&'a str>,
    }
    let mut parts: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    // None until the header was seen; then how many paragraphs were taken.
    let mut taken: Option<usize> = None;
    let mut para = Para {
        blank: true,
        ..Para::default()
    };
    let pieces = text.split('\n');
    // Ends the paragraph: true when the reading is over.
    let mut seen: Vec<&str> = Vec::new();
    let mut close = |para: &Para<'a>,
                     taken: &mut Option<usize>,
                     parts: &mut Vec<String>,
                     unknown: &mut Vec<String>|
     -> Result<bool, Licence> {
        if para.blank {
            return Ok(false);
        }
        let Some(n) = taken else {
            if !para.format {
                return Err(Licence::Unknown(
                    "free-form copyright file (not DEP-5)".to_owned(),
                ));
            }
            *taken = Some(0);
            return Ok(false);
        };
        if *n >= MAX_PARAGRAPHS {
            return Ok(true);
        }
        *n += 1;
        if !para.files {
            return Ok(false); // a standalone License: paragraph (the text) or a comment
        }
        let Some(short) = para.licence else {
            let why = "a Files paragraph without License".to_owned();
            unknown.push(why);
            return Ok(false);
        };
        // A synopsis read before changes nothing again (both lists keep
        // each entry once).
        if seen.contains(&short) {
            return Ok(false);
        }
        seen.push(short);
        match synopsis(short) {
            Some(expr) => {
                if !parts.contains(&expr) {
                    parts.push(expr);
                }
            }
            None => {
                let short: String = short.chars().take(128).collect();
                if !unknown.contains(&short) {
                    unknown.push(short);
                }
            }
        }
        Ok(false)
    };
    for piece in pieces {
        if piece.is_empty() {
            match close(&para, &mut taken, &mut parts, &mut unknown) {
                Ok(false) => {}
                Ok(true) => break,
                Err(l) => return l,
            }
            para = Para {
                blank: true,
                ..Para::default()
            };
            continue;
        }
        let line = piece.strip_suffix('\r').unwrap_or(piece);
        if para.blank && !line.trim().is_empty() {
            para.blank = false;
        }
        if taken.is_none() {
            if line
                .strip_prefix("Format:")
                .is_some_and(|f| f.contains("copyright-format/1.0"))
            {
                para.format = true;
            }
        } else if line.starts_with("Files:") {
            para.files = true;
        } else if para.licence.is_none()
            && let Some(l) = line.strip_prefix("License:")
        {
            para.licence = Some(l.trim());
        }
    }
    if let Err(l) = close(&para, &mut taken, &mut parts, &mut unknown) {
        return l;
    }
    if taken.is_none() {
        return Licence::Unknown("free-form copyright file (not DEP-5)".to_owned());
    }
    if !unknown.is_empty() {
        return Licence::Unknown(format!(
            "DEP-5 names licences without a known SPDX id: {}",
            unknown.join("; ")
        ));
    }
    if parts.is_empty() {
        return Licence::NotGiven;
    }
    let joined = if parts.len() == 1 {
        parts.remove(0)
    } else {
        parts
            .iter()
            .map(|p| {
                if p.contains(' ') {
                    format!("({p})")
                } else {
                    p.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    parse_licence(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\n";

    /// `files` are the License synopses of successive `Files:` paragraphs.
    fn check(files: &[&str], want: Result<&str, &str>) {
        let mut text = HEADER.to_owned();
        for (i, l) in files.iter().enumerate() {
            text.push_str(&format!(
                "Files: part{i}/*\nCopyright: someone\nLicense: {l}\n\n"
            ));
        }
        text.push_str(
            "License: GPL-3+\n On Debian systems, see /usr/share/common-licenses/GPL-3.\n",
        );
        match (want, licence(&text)) {
            (Ok(w), Licence::Expression(got)) => assert_eq!(got, w, "{files:?}"),
            (Err(part), Licence::Unknown(why)) => assert!(why.contains(part), "{files:?}: {why}"),
            (want, got) => panic!("{files:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn debian_short_names_become_spdx_expressions() {
        check(&["GPL-3+"], Ok("GPL-3.0-or-later"));
        check(&["GPL-3+", "GPL-3+"], Ok("GPL-3.0-or-later"));
        check(
            &["GPL-2+", "LGPL-2.1+"],
            Ok("GPL-2.0-or-later AND LGPL-2.1-or-later"),
        );
        check(
            &["GPL-1+ or Artistic"],
            Ok("GPL-1.0-or-later OR Artistic-1.0-Perl"),
        );
        check(
            &["Expat", "LGPL-3+ or GPL-2+"],
            Ok("MIT AND (LGPL-3.0-or-later OR GPL-2.0-or-later)"),
        );
        check(&["BSD-3-clause", "zlib"], Ok("BSD-3-Clause AND Zlib"));
        check(&["Apache-2"], Ok("Apache-2.0"));
        // Names without a known SPDX id, exceptions, dangling operators: said.
        check(&["GPL-3+", "BSLA"], Err("without a known SPDX id: BSLA"));
        check(&["GPLv3+"], Err("GPLv3+"));
        check(
            &["GPL-3+ with Bison exception"],
            Ok("GPL-3.0-or-later WITH Bison-exception-2.2"),
        );
        check(
            &["GPL-3+", "GPL-2+ with Texinfo exception"],
            Ok("GPL-3.0-or-later AND (GPL-2.0-or-later WITH Texinfo-exception)"),
        );
        check(
            &["GPL-3+ with Weird exception"],
            Err("with Weird exception"),
        );
        check(&["GPL-3+ with Bison"], Err("with Bison"));
        check(&["GPL-2 or"], Err("GPL-2 or"));
        check(&["public-domain"], Err("public-domain"));
        check(&[""], Err("without a known SPDX id"));
    }

    /// The reading before it was one pass (each paragraph split out and read
    /// up to three times): the oracle the one pass must agree with.
    fn licence_by_paragraphs(text: &str) -> Licence {
        let mut paragraphs = text.split("\n\n").filter(|p| !p.trim().is_empty());
        let is_dep5 = paragraphs.next().is_some_and(|header| {
            header.lines().any(|l| {
                l.strip_prefix("Format:")
                    .is_some_and(|f| f.contains("copyright-format/1.0"))
            })
        });
        if !is_dep5 {
            return Licence::Unknown("free-form copyright file (not DEP-5)".to_owned());
        }
        let mut parts: Vec<String> = Vec::new();
        let mut unknown: Vec<String> = Vec::new();
        for p in paragraphs.take(MAX_PARAGRAPHS) {
            if !p.lines().any(|l| l.starts_with("Files:")) {
                continue; // a standalone License: paragraph (the text) or a comment
            }
            let Some(short) = p
                .lines()
                .find_map(|l| l.strip_prefix("License:"))
                .map(str::trim)
            else {
                unknown.push("a Files paragraph without License".to_owned());
                continue;
            };
            match synopsis(short) {
                Some(expr) => {
                    if !parts.contains(&expr) {
                        parts.push(expr);
                    }
                }
                None => {
                    let short: String = short.chars().take(128).collect();
                    if !unknown.contains(&short) {
                        unknown.push(short);
                    }
                }
            }
        }
        if !unknown.is_empty() {
            return Licence::Unknown(format!(
                "DEP-5 names licences without a known SPDX id: {}",
                unknown.join("; ")
            ));
        }
        if parts.is_empty() {
            return Licence::NotGiven;
        }
        let joined = if parts.len() == 1 {
            parts.remove(0)
        } else {
            parts
                .iter()
                .map(|p| {
                    if p.contains(' ') {
                        format!("({p})")
                    } else {
                        p.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        parse_licence(&joined)
    }

    /// The one pass reads every file as the paragraph split did: blank and
    /// whitespace-only paragraphs, three or four line ends in a row, CRLF
    /// files (whose `\r\n\r\n` separates nothing), a `License:` before
    /// `Files:`, a header after blank lines, trailing text; and every
    /// copyright file of this host, where it has them.
    #[test]
    fn one_pass_reads_copyright_files_as_the_paragraph_split_did() {
        let f = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/";
        let mut cases: Vec<String> = [
            "",
            "\n",
            "\n\n",
            "\n\n\n",
            f,
            "Format: other",
            "Files: *\nLicense: MIT\n",
            "  \n\n",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for body in [
            "Files: *\nLicense: GPL-2+\n\nFiles: a\nLicense: MIT\n",
            "Files: *\nLicense: GPL-2+\n\n\nFiles: a\nLicense: BSLA\n",
            "Files: *\nLicense: GPL-2+\n\n\n\nFiles: a\nLicense: MIT\n\n",
            "License: MIT\nFiles: *\n\nFiles: b\n\nLicense: GPL-3+\n Text.\n",
            "Files: *\n  \nLicense: Expat\n\n \t \n\nFiles: c\nLicense: Zlib",
            "Files: *\nLicense: GPL-2+ or Artistic\nLicense: MIT\n",
            "Comment: x\n\nFiles: *\nLicense:   \n",
        ] {
            for head in [
                format!("{f}\n\n"),
                format!("\n\n{f}\nUpstream-Name: x\n\n"),
                format!("\n\n\n{f}\n\n"),
                format!("{f}\n"),
                "Format: free\n\n".to_owned(),
            ] {
                let text = format!("{head}{body}");
                cases.push(text.replace('\n', "\r\n"));
                cases.push(text);
            }
        }
        let mut many = format!("{f}\n\n");
        for i in 0..MAX_PARAGRAPHS + 5 {
            let l = if i < MAX_PARAGRAPHS { "MIT" } else { "BSLA" };
            many.push_str(&format!("Files: {i}\nLicense: {l}\n\n"));
        }
        cases.push(many);
        if let Ok(dirs) = std::fs::read_dir("/usr/share/doc") {
            for d in dirs.flatten() {
                if let Ok(text) = std::fs::read_to_string(d.path().join("copyright")) {
                    cases.push(text);
                }
            }
        }
        for text in &cases {
            assert_eq!(licence(text), licence_by_paragraphs(text), "{text:?}");
        }
    }

    #[test]
    fn free_form_and_empty_files_are_not_guessed() {
        assert_eq!(
            licence("This is the Debian prepackaged version of the GNU C Library.\n"),
            Licence::Unknown("free-form copyright file (not DEP-5)".to_owned())
        );
        assert_eq!(licence(HEADER), Licence::NotGiven);
        assert_eq!(
            licence(""),
            Licence::Unknown("free-form copyright file (not DEP-5)".to_owned())
        );
    }
}
