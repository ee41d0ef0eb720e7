//! Kubernetes names and labels: the checks the API server would make, made early so the
//! error names the spec field.

use crate::error::{FieldError, Result};
use crate::model::StringMap;

/// Labels of an object, sorted by key.
pub type Labels = StringMap;

/// Check that `value` is a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63).
pub fn check_dns_label(field: &str, value: &str) -> Result<()> {
    if value.len() <= 63 && is_dns_part(value) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "{value:?} is not a DNS-1123 label (lower-case letters, digits and '-', \
                 starting and ending with a letter or digit, at most 63 characters)"
            ),
        ))
    }
}

/// Check that `value` is a DNS-1123 subdomain: labels joined by '.', at most 253.
pub fn check_dns_subdomain(field: &str, value: &str) -> Result<()> {
    if value.len() <= 253 && value.split('.').all(is_dns_part) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{value:?} is not a DNS-1123 subdomain"),
        ))
    }
}

fn is_dns_part(value: &str) -> bool {
    let bytes = value.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// Check a label value: empty, or at most 63 of `[A-Za-z0-9._-]` with alphanumeric ends.
pub fn check_label_value(field: &str, value: &str) -> Result<()> {
    if is_label_name(value) || value.is_empty() {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "{value:?} is not a valid label value (at most 63 letters, digits, '-', '_' \
                 or '.', starting and ending with a letter or digit)"
            ),
        ))
    }
}

/// Check a label key: `[prefix/]name`, the prefix a DNS subdomain.
pub fn check_label_key(field: &str, key: &str) -> Result<()> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| check_dns_subdomain(field, p).is_ok());
    if prefix_ok && is_label_name(name) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{key:?} is not a valid label key ([prefix/]name, name at most 63 characters)"),
        ))
    }
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The spec's labels, checked, refusing keys the rules set themselves.
pub fn spec_labels(labels: &[(String, String)], reserved: &[&str]) -> Result<Labels> {
    let mut out = Labels::new();
    for (key, value) in labels {
        let field = format!("labels.{key}");
        check_label_key(&field, key)?;
        check_label_value(&field, value)?;
        if reserved.contains(&key.as_str()) {
            return Err(FieldError::new(
                field,
                format!("{key:?} is set by the rules and cannot be given"),
            ));
        }
        if out.insert(key.clone(), value.clone()).is_some() {
            return Err(FieldError::new(field, "given twice"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for ok in ["a", "web-1", "0abc", &"a".repeat(63)] {
            check_dns_label("component_name", ok).expect(ok);
        }
        for bad in ["", "-a", "a-", "Web", "a_b", "a.b", &"a".repeat(64)] {
            let err = check_dns_label("component_name", bad).expect_err(bad);
            assert!(
                err.message
                    .starts_with(&format!("{bad:?} is not a DNS-1123 label")),
                "{err}"
            );
        }
    }

    #[test]
    fn label_keys_and_values() {
        check_label_key("labels", "team").unwrap();
        check_label_key("labels", "example.com/cost-center").unwrap();
        check_label_value("labels", "").unwrap();
        check_label_value("labels", "A.b_c-9").unwrap();
        assert!(check_label_key("labels", "bad key").is_err());
        assert!(check_label_key("labels", "Bad_Prefix/x").is_err());
        assert!(check_label_key("labels", "/x").is_err());
        assert!(check_label_value("labels", "-x").is_err());
        assert!(check_label_value("labels", &"v".repeat(64)).is_err());
    }

    #[test]
    fn spec_labels_checked_and_reserved_refused() {
        let labels = vec![
            ("team".to_owned(), "core".to_owned()),
            ("tier".to_owned(), "web".to_owned()),
        ];
        assert_eq!(spec_labels(&labels, &["app"]).unwrap().len(), 2);
        let err = spec_labels(&[("app".into(), "x".into())], &["app"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "labels.app: \"app\" is set by the rules and cannot be given"
        );
        let err = spec_labels(&[("team".into(), "has space".into())], &[]).unwrap_err();
        assert_eq!(err.field, "labels.team");
    }
}
