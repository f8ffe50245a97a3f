//! A form's inputs, how a form a use case refused shows what is wrong and where, and
//! reading what the user typed or changed.

use std::collections::HashMap;

use axum::http::StatusCode;

use super::page::PageError;
use crate::failure::{Failure, Field};

/// One labelled input of a form, with its value and, when the form came back refused, the
/// sentence saying what is wrong with it. Every form renders its inputs through one
/// template (`dashboard/inputs.html`), so each is labelled and described alike.
#[derive(Debug, Clone)]
pub struct FormInput {
    /// The form member, also the input's id (prefixed).
    pub name: String,
    pub label: String,
    pub kind: InputKind,
    pub value: String,
    /// The choices of a `Select`.
    pub options: Vec<String>,
    /// A sentence under the label saying what is accepted.
    pub hint: Option<String>,
    pub error: Option<String>,
    pub required: bool,
    /// The value the input showed when the form was loaded, sent back with the form as a
    /// hidden input so that saving writes only what the user changed ([`changed`]).
    pub shown: Option<String>,
}

/// How an input is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Text,
    Email,
    Phone,
    Number,
    Date,
    /// One of `options`, or none.
    Select,
    /// true, false or none.
    Boolean,
    /// Several lines.
    Lines,
}

impl FormInput {
    /// An input of `kind`, empty and optional.
    pub(super) fn new(name: impl Into<String>, label: impl Into<String>, kind: InputKind) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind,
            value: String::new(),
            options: Vec::new(),
            hint: None,
            error: None,
            required: false,
            shown: None,
        }
    }

    pub(super) fn value(mut self, value: impl Into<String>) -> Self {
        self.value = value.into();
        self
    }

    pub(super) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(super) fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub(super) fn shown(mut self, shown: impl Into<String>) -> Self {
        self.shown = Some(shown.into());
        self
    }

    /// The hidden input carrying [`FormInput::shown`] back.
    pub(super) fn shown_name(&self) -> String {
        shown_name(&self.name)
    }

    pub(super) fn options(mut self, options: Vec<String>) -> Self {
        self.options = options;
        self
    }

    /// The HTML `type` of an `<input>`.
    pub(super) fn html_type(&self) -> &'static str {
        match self.kind {
            InputKind::Email => "email",
            InputKind::Phone => "tel",
            InputKind::Date => "date",
            // A number field takes "4.50" or "1e3" as the API does; the browser's own
            // number input would refuse some of those before the server could explain.
            InputKind::Text
            | InputKind::Number
            | InputKind::Select
            | InputKind::Boolean
            | InputKind::Lines => "text",
        }
    }

    pub(super) fn is_select(&self) -> bool {
        self.kind == InputKind::Select
    }

    pub(super) fn is_boolean(&self) -> bool {
        self.kind == InputKind::Boolean
    }

    pub(super) fn is_lines(&self) -> bool {
        self.kind == InputKind::Lines
    }

    /// The ids of the hint and the error shown for the input, for `aria-describedby`.
    pub(super) fn described_by(&self) -> String {
        let hint = self.hint.as_ref().map(|_| format!("hint-{}", self.name));
        let error = self.error.as_ref().map(|_| format!("error-{}", self.name));
        [hint, error]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub(super) fn inputmode(&self) -> &'static str {
        match self.kind {
            InputKind::Number => "decimal",
            _ => "text",
        }
    }
}

/// What was wrong with a form sent back: the sentence, and the input it is about (whose
/// own error it is also shown as), if any.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Each refusal: its sentence, and the input it is about when the form has it.
    pub errors: Vec<(String, Option<String>)>,
}

/// Shows a write a use case refused on its form: each sentence next to the input at fault
/// (the form input `input_of` names for the failure's [`Field`]) and above the form, with
/// the status the API answers (400, or 409 for a conflict). Anything not about the input
/// (a 404, the database down) is an error page.
pub(super) fn refused(
    inputs: &mut [FormInput],
    failure: Failure,
    input_of: impl Fn(&Field) -> Option<String>,
) -> Result<(StatusCode, Problem), PageError> {
    let failures = match failure {
        Failure::Several(failures) => failures,
        one => vec![one],
    };
    let mut status = StatusCode::BAD_REQUEST;
    let mut errors = Vec::with_capacity(failures.len());
    for failure in failures {
        let (field, message) = match failure {
            Failure::Invalid { field, message, .. } => (field, message),
            Failure::Conflict { field, message, .. } => {
                status = StatusCode::CONFLICT;
                (field, message)
            }
            other => return Err(PageError::Failed(other)),
        };
        let input = field.as_ref().and_then(&input_of);
        errors.extend(problem_at(inputs, input, message).errors);
    }
    Ok((status, Problem { errors }))
}

/// A form sent back refused for `message`: shown next to the input `name`, when the form
/// has it, and above the form.
pub(super) fn problem_at(
    inputs: &mut [FormInput],
    name: Option<String>,
    message: String,
) -> Problem {
    let at = name.and_then(|name| inputs.iter_mut().find(|input| input.name == name));
    let input = at.map(|at| {
        at.error = Some(message.clone());
        at.name.clone()
    });
    Problem {
        errors: vec![(message, input)],
    }
}

/// The prefix of the hidden input that carries back what the input `NAME` showed.
const SHOWN: &str = "shown.";

fn shown_name(name: &str) -> String {
    format!("{SHOWN}{name}")
}

/// What the user set the input `name` to, if they changed it: `None` when the form did not
/// have the input (it was not shown: a custom field defined after the form was loaded) or
/// when it still holds what it showed. A save writes only these, so it never overwrites
/// what someone else changed meanwhile in an input this user left alone
/// (`docs/robustness.md#concurrent-admins-no-lost-updates`). A form without the hidden
/// input (sent by a script) writes every input it has.
pub(super) fn changed<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    let value = form.get(name)?;
    match form.get(&shown_name(name)) {
        Some(shown) if shown == value => None,
        _ => Some(value),
    }
}

/// What the input `name` showed when the form was loaded, as the form carries it back.
pub(super) fn shown_in<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(&shown_name(name)).map(String::as_str)
}

/// The value of a form member, as typed; `""` when absent.
pub(super) fn member<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", String::as_str)
}

/// A form member's value, or `None` when it is blank (an empty input means "no value").
pub(super) fn filled(form: &HashMap<String, String>, name: &str) -> Option<String> {
    let value = member(form, name);
    (!value.trim().is_empty()).then(|| value.to_owned())
}
