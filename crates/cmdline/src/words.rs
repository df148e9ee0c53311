//! Splitting a command string into commands (`;`) and words (white space),
//! honouring double quotes.

use alloc::string::String;
use alloc::vec::Vec;

/// Splits `input` at `sep` characters that are outside double quotes.
fn split_unquoted(input: &str, sep: impl Fn(char) -> bool) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in input.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && sep(c) {
            parts.push(&input[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&input[start..]);
    parts
}

/// The commands of a `;`-separated script, trimmed, empty ones dropped.
pub fn commands(script: &str) -> Vec<&str> {
    split_unquoted(script, |c| c == ';').into_iter().map(str::trim).filter(|c| !c.is_empty()).collect()
}

/// The words of one command; double quotes group words and are removed.
pub fn words(command: &str) -> Vec<String> {
    split_unquoted(command, char::is_whitespace)
        .into_iter()
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().filter(|&c| c != '"').collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_commands_and_words() {
        assert_eq!(commands(" guest list; halt ;; "), ["guest list", "halt"]);
        assert_eq!(commands("echo \"a; b\"; x"), ["echo \"a; b\"", "x"]);
        assert_eq!(words("  guest   start \"my guest\" "), ["guest", "start", "my guest"]);
        assert!(words("   ").is_empty());
        assert!(commands("").is_empty());
    }
}
