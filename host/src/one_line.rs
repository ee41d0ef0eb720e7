//! An error and its causes as one line, for people: the CLI's messages and the
//! controller's conditions.

/// The error and its causes, on one line. A cause is left out when the text already holds
/// it, and the chain stops at kube's own error: berth's message already carries the API
/// server's words, and kube's display adds its debug form of the same status.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(source) = cause {
        if source.downcast_ref::<kube::Error>().is_some() {
            break;
        }
        let said = source.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        cause = source.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
