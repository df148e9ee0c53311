//! The hypervisor's boot arguments (`/chosen/bootargs` of the host DT).
//!
//! Arguments are white-space separated `key` or `key=value` items; a value
//! may be double-quoted to hold spaces and `;`, as in
//! `ferrovisor.bootcmd="guest list; halt" ferrovisor.loglevel=debug`.

use alloc::string::String;
use alloc::vec::Vec;

/// One boot argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The key, e.g. `ferrovisor.bootcmd`.
    pub key: String,
    /// The value with its quotes removed, if an `=` was given.
    pub value: Option<String>,
}

/// Parses a bootargs string. Never fails: an unterminated quote runs to the
/// end of the string.
pub fn parse(bootargs: &str) -> Vec<Arg> {
    crate::words::words(bootargs)
        .into_iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) => Arg { key: k.into(), value: Some(v.into()) },
            None => Arg { key: item, value: None },
        })
        .collect()
}

/// The value of the last occurrence of `key`, if any.
pub fn get<'a>(args: &'a [Arg], key: &str) -> Option<&'a str> {
    args.iter().rev().find(|a| a.key == key).and_then(|a| a.value.as_deref())
}

/// Whether `key` appears at all (a flag such as `ferrovisor.halt-when-idle`,
/// with or without a value).
pub fn has(args: &[Arg], key: &str) -> bool {
    args.iter().any(|a| a.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_values() {
        let args = parse("console=x ferrovisor.bootcmd=\"guest list; halt\" quiet ferrovisor.loglevel=debug");
        assert_eq!(get(&args, "ferrovisor.bootcmd"), Some("guest list; halt"));
        assert_eq!(get(&args, "ferrovisor.loglevel"), Some("debug"));
        assert_eq!(get(&args, "quiet"), None);
        assert!(has(&args, "quiet"));
        assert!(!has(&args, "loud"));
        assert_eq!(args.len(), 4);
        assert_eq!(args[2], Arg { key: "quiet".into(), value: None });
    }

    #[test]
    fn unterminated_quote_is_not_fatal() {
        let args = parse("a=\"b c");
        assert_eq!(get(&args, "a"), Some("b c"));
    }
}
