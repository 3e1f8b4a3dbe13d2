//! The grammars of identity's names: users, groups, tokens and service accounts. Each is
//! checked where a name is made (API, console, command line, external sign-in) and refused with
//! a field error; a user name longer than [`MAX_USER_NAME`] is refused at sign-in before any
//! lookup, throttle key or audit row is made of it.

use crate::oci::is_valid_namespace;

/// The longest user name, in bytes (an e-mail address fits).
pub const MAX_USER_NAME: usize = 128;
/// The longest group name, in bytes.
pub const MAX_GROUP_NAME: usize = 128;
/// The longest token name, in bytes.
pub const MAX_TOKEN_NAME: usize = 100;

/// The prefix of the groups Berth gives subjects itself (`system:authenticated`, …): bound to,
/// never managed.
pub const RESERVED_GROUP_PREFIX: &str = "system:";

/// Letters, digits and `._-@+`, starting and ending with a letter or digit, at most
/// [`MAX_USER_NAME`] bytes: an e-mail address or a login name, never a path (`.`, `..`, `/`),
/// a `Kind:name` pair or a control character.
pub fn user_name_error(name: &str) -> Option<String> {
    name_error(name, "a user name", MAX_USER_NAME, |c| {
        matches!(c, '.' | '_' | '-' | '@' | '+')
    })
}

/// Letters, digits and `._-@:`, starting and ending with a letter or digit, at most
/// [`MAX_GROUP_NAME`] bytes. Names under `system:` are Berth's own.
pub fn group_name_error(name: &str) -> Option<String> {
    name_error(name, "a group name", MAX_GROUP_NAME, |c| {
        matches!(c, '.' | '_' | '-' | '@' | ':')
    })
}

/// A group a local administrator may manage: the grammar, and not one of Berth's own.
pub fn managed_group_name_error(name: &str) -> Option<String> {
    group_name_error(name).or_else(|| {
        name.starts_with(RESERVED_GROUP_PREFIX).then(|| {
            format!("groups under {RESERVED_GROUP_PREFIX:?} are Berth's own and cannot be managed")
        })
    })
}

/// A label for a token: letters, digits, spaces and `._-@:`, starting and ending with a
/// letter or digit, at most [`MAX_TOKEN_NAME`] bytes.
pub fn token_name_error(name: &str) -> Option<String> {
    name_error(name, "a token name", MAX_TOKEN_NAME, |c| {
        matches!(c, ' ' | '.' | '_' | '-' | '@' | ':')
    })
}

/// A service account name: a DNS label, as a namespace's (1 to 63 lowercase letters, digits
/// and `-`).
pub fn service_account_name_error(name: &str) -> Option<String> {
    (!is_valid_namespace(name)).then(|| {
        "a service account name is 1 to 63 lowercase letters, digits and -, starting and ending with a letter or digit".to_owned()
    })
}

fn name_error(
    name: &str,
    what: &str,
    max: usize,
    allowed_inside: impl Fn(char) -> bool,
) -> Option<String> {
    let describe = || {
        format!(
            "{what} is 1 to {max} letters, digits and {}, starting and ending with a letter or digit",
            (' '..='~')
                .filter(|c| !c.is_ascii_alphanumeric() && allowed_inside(*c))
                .map(|c| if c == ' ' {
                    "space".to_owned()
                } else {
                    c.to_string()
                })
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let first_and_last_ok = name
        .chars()
        .next()
        .zip(name.chars().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    let ok = name.len() <= max
        && first_and_last_ok
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || allowed_inside(c));
    (!ok).then(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        for good in [
            "admin",
            "alice@example.com",
            "a",
            "bob.smith",
            "ci-bot_2",
            "x+y",
        ] {
            assert_eq!(user_name_error(good), None, "{good}");
        }
        let long = "a".repeat(MAX_USER_NAME + 1);
        for bad in [
            "",
            ".",
            "..",
            "../../etc",
            "a/b",
            "a:b",
            "system:admin",
            "a\0b",
            "a b",
            "-a",
            "a.",
            "ädmin",
            long.as_str(),
        ] {
            assert!(user_name_error(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn group_names() {
        for good in ["devs", "oidc-devs", "team.a", "org:team"] {
            assert_eq!(group_name_error(good), None, "{good}");
        }
        for bad in [".", "..", "../../etc", "/admins", "a/b", "", "a\0", " a"] {
            assert!(group_name_error(bad).is_some(), "{bad:?}");
        }
        assert_eq!(group_name_error("system:authenticated"), None);
        assert!(managed_group_name_error("system:authenticated").is_some());
        assert!(managed_group_name_error("system:masters").is_some());
        assert_eq!(managed_group_name_error("devs"), None);
    }

    #[test]
    fn token_names() {
        for good in ["laptop", "CI token", "token-20250101-120000", "build@host"] {
            assert_eq!(token_name_error(good), None, "{good}");
        }
        let long = "t".repeat(MAX_TOKEN_NAME + 1);
        for bad in ["a/b", "a\0b", "", "../x", " x", "x\n", long.as_str()] {
            assert!(token_name_error(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn service_account_names() {
        assert_eq!(service_account_name_error("builder"), None);
        for bad in ["Builder", "a_b", ".", "a/b", ""] {
            assert!(service_account_name_error(bad).is_some(), "{bad:?}");
        }
    }
}
