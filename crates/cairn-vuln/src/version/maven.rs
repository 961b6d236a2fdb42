//! Maven version ordering: `org.apache.maven.artifact.versioning.ComparableVersion`.
//!
//! The version is split into a tree of items: `.` separates items of one list,
//! `-` and every digit/letter transition open a nested list. Numbers compare by
//! value; qualifiers by the sequence alpha < beta < milestone < rc = cr <
//! snapshot < "" = ga = final = release < sp, then unknown qualifiers
//! lexically; `a1`/`b1`/`m1` are alpha/beta/milestone. Each list drops its
//! trailing "null" items (0, "", empty list) and those before a hyphen —
//! so `1 = 1.0 = 1-0 = 1.ga` and `1-ga-1 = 1-1`.

use super::num::Num;
use super::{Scheme, VersionError};
use std::cmp::Ordering;

#[derive(Clone, Debug)]
pub(crate) enum Item {
    Int(Num),
    Str(String),
    List(Vec<Item>),
}

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_INDEX: &str = "5";

fn comparable_qualifier(q: &str) -> String {
    match QUALIFIERS.iter().position(|x| *x == q) {
        Some(i) => i.to_string(),
        None => format!("{}-{q}", QUALIFIERS.len()),
    }
}

fn string_item(value: &str, followed_by_digit: bool) -> Item {
    let value = if followed_by_digit && value.len() == 1 {
        match value {
            "a" => "alpha",
            "b" => "beta",
            "m" => "milestone",
            v => v,
        }
    } else {
        value
    };
    let value = match value {
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        v => v,
    };
    Item::Str(value.to_owned())
}

fn parse_item(is_digit: bool, buf: &str) -> Item {
    if is_digit {
        Item::Int(Num::new(buf))
    } else {
        string_item(buf, false)
    }
}

impl Item {
    fn is_null(&self) -> bool {
        match self {
            Item::Int(n) => n.is_zero(),
            Item::Str(s) => s.is_empty(),
            Item::List(l) => l.is_empty(),
        }
    }

    /// `Item.compareTo(null)`: compares against "nothing here".
    fn cmp_null(&self) -> Ordering {
        match self {
            Item::Int(n) => {
                if n.is_zero() {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            Item::Str(s) => comparable_qualifier(s).as_str().cmp(RELEASE_INDEX),
            Item::List(l) => l.first().map_or(Ordering::Equal, Item::cmp_null),
        }
    }

    fn cmp_item(&self, other: &Item) -> Ordering {
        match (self, other) {
            (Item::Int(a), Item::Int(b)) => a.cmp(b),
            (Item::Int(_), _) => Ordering::Greater,
            (Item::Str(_), Item::Int(_)) => Ordering::Less,
            (Item::Str(a), Item::Str(b)) => comparable_qualifier(a).cmp(&comparable_qualifier(b)),
            (Item::Str(_), Item::List(_)) => Ordering::Less,
            (Item::List(_), Item::Int(_)) => Ordering::Less,
            (Item::List(_), Item::Str(_)) => Ordering::Greater,
            (Item::List(a), Item::List(b)) => {
                let n = a.len().max(b.len());
                for i in 0..n {
                    let r = match (a.get(i), b.get(i)) {
                        (None, None) => Ordering::Equal,
                        (None, Some(r)) => r.cmp_null().reverse(),
                        (Some(l), None) => l.cmp_null(),
                        (Some(l), Some(r)) => l.cmp_item(r),
                    };
                    if r != Ordering::Equal {
                        return r;
                    }
                }
                Ordering::Equal
            }
        }
    }
}

/// Drops "null" items (0, "", empty list) at the end of the list and before
/// each hyphen (a nested list), from the end backwards: the Maven version
/// order specification's "trailing null values are trimmed; this process is
/// repeated at each remaining hyphen from end to start" (so `1-ga-1 = 1-1`).
fn normalize(list: &mut Vec<Item>, is_root: bool) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        let before_hyphen = matches!(list.get(i + 1), None | Some(Item::List(_)));
        if list[i].is_null() && before_hyphen {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
    // (The root is not a hyphen list.) A hyphen list left holding only the next hyphen list (`-ga-1` after
    // trimming `ga`) is that list: the flat token sequence is `-1`.
    if !is_root
        && list.len() == 1
        && let Some(Item::List(child)) = list.first_mut()
    {
        let child = std::mem::take(child);
        *list = child;
    }
}

/// Builds the item tree. The Java code keeps a stack of open lists, each nested
/// in the previous; here `stack` holds them and they are folded on the way out,
/// normalising innermost first as `parseVersion` does.
pub(crate) fn parse(s: &str) -> Result<Item, VersionError> {
    let t = s.trim();
    if t.is_empty() || t.chars().any(char::is_whitespace) {
        return Err(VersionError::invalid(
            Scheme::Maven,
            s,
            "empty or contains whitespace",
        ));
    }
    let v = t.to_lowercase();
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut start = 0;
    let chars: Vec<(usize, char)> = v.char_indices().collect();
    let top = |stack: &mut Vec<Vec<Item>>| -> usize { stack.len() - 1 };
    for &(i, c) in &chars {
        if c == '.' {
            let item = if i == start {
                Item::Int(Num::new(""))
            } else {
                parse_item(is_digit, &v[start..i])
            };
            let t = top(&mut stack);
            stack[t].push(item);
            start = i + 1;
        } else if c == '-' {
            let item = if i == start {
                Item::Int(Num::new(""))
            } else {
                parse_item(is_digit, &v[start..i])
            };
            let t = top(&mut stack);
            stack[t].push(item);
            start = i + 1;
            stack.push(Vec::new());
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                let t = top(&mut stack);
                stack[t].push(string_item(&v[start..i], true));
                start = i;
                stack.push(Vec::new());
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                let t = top(&mut stack);
                stack[t].push(parse_item(true, &v[start..i]));
                start = i;
                stack.push(Vec::new());
            }
            is_digit = false;
        }
    }
    if v.len() > start {
        let t = top(&mut stack);
        stack[t].push(parse_item(is_digit, &v[start..]));
    }
    // Fold: each list is the last element of its parent.
    let mut inner: Option<Vec<Item>> = None;
    while let Some(mut list) = stack.pop() {
        if let Some(child) = inner.take() {
            list.push(Item::List(child));
        }
        normalize(&mut list, stack.is_empty());
        inner = Some(list);
    }
    Ok(Item::List(inner.unwrap_or_default()))
}

pub(crate) fn cmp(a: &Item, b: &Item) -> Ordering {
    a.cmp_item(b)
}
