//! Kubernetes resource quantities (`0.5`, `500m`, `2Gi`, `1e3`) and the resources block.

use crate::component::types::{ResourceAmounts, Resources as SpecResources};
use crate::error::{FieldError, Result};
use crate::model::{Resources, StringMap};

/// Check `text` against the Kubernetes quantity grammar, refusing negative amounts.
///
/// `<number><suffix>`: number `N`, `N.N`, `N.` or `.N` with an optional `+`;
/// suffix a binary (`Ki`…`Ei`) or decimal (`n u m k M G T P E`) multiplier or an
/// exponent `e<int>`/`E<int>`.
pub fn check_quantity(field: &str, text: &str) -> Result<()> {
    let bad = || {
        FieldError::new(
            field,
            format!("{text:?} is not a Kubernetes quantity (e.g. 500m, 0.5, 2Gi)"),
        )
    };
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    if unsigned.starts_with('-') {
        return Err(FieldError::new(field, format!("{text:?} is negative")));
    }
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = !fraction.contains('.')
        && (!whole.is_empty() || !fraction.is_empty())
        && whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit());
    let suffix_ok = match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        exp if exp.starts_with(['e', 'E']) => {
            let digits = exp[1..].strip_prefix(['+', '-']).unwrap_or(&exp[1..]);
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    };
    if digits_ok && suffix_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The `resources` block of the main container, every quantity checked.
pub fn resources(spec: &SpecResources) -> Result<Option<Resources>> {
    let out = Resources {
        limits: amounts("resources.limits", spec.limits.as_ref())?,
        requests: amounts("resources.requests", spec.requests.as_ref())?,
    };
    Ok((!out.limits.is_empty() || !out.requests.is_empty()).then_some(out))
}

fn amounts(field: &str, amounts: Option<&ResourceAmounts>) -> Result<StringMap> {
    let mut map = StringMap::new();
    let Some(amounts) = amounts else {
        return Ok(map);
    };
    for (name, value) in [("cpu", &amounts.cpu), ("memory", &amounts.memory)] {
        if let Some(value) = value {
            check_quantity(&format!("{field}.{name}"), value)?;
            map.insert(name.to_owned(), value.clone());
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_quantities() {
        for q in [
            "0.5",
            "500m",
            "2Gi",
            "1",
            "+1",
            "1.",
            ".5",
            "1e3",
            "1E-2",
            "128974848",
            "129M",
            "123Mi",
            "100n",
        ] {
            check_quantity("resources.limits.cpu", q).expect(q);
        }
    }

    #[test]
    fn invalid_quantities_name_field_and_value() {
        for q in [
            "", "abc", "2GB", "1.2.3", "Gi", ".", "1e", "5 Gi", "0x10", "1ki",
        ] {
            let err = check_quantity("resources.limits.memory", q).expect_err(q);
            assert_eq!(
                err.to_string(),
                format!(
                    "resources.limits.memory: {q:?} is not a Kubernetes quantity (e.g. 500m, 0.5, 2Gi)"
                )
            );
        }
        let err = check_quantity("resources.requests.cpu", "-1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "resources.requests.cpu: \"-1\" is negative"
        );
    }

    #[test]
    fn resources_keep_only_what_is_given() {
        let spec = SpecResources {
            limits: Some(ResourceAmounts {
                cpu: Some("0.5".into()),
                memory: Some("2Gi".into()),
            }),
            requests: Some(ResourceAmounts {
                cpu: None,
                memory: Some("1Gi".into()),
            }),
        };
        let json = serde_json::to_value(resources(&spec).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"limits": {"cpu": "0.5", "memory": "2Gi"}, "requests": {"memory": "1Gi"}})
        );
        let empty = SpecResources {
            limits: None,
            requests: Some(ResourceAmounts {
                cpu: None,
                memory: None,
            }),
        };
        assert!(resources(&empty).unwrap().is_none());
        let bad = SpecResources {
            limits: Some(ResourceAmounts {
                cpu: Some("lots".into()),
                memory: None,
            }),
            requests: None,
        };
        assert_eq!(resources(&bad).unwrap_err().field, "resources.limits.cpu");
    }
}
