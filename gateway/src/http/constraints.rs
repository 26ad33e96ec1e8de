//! The rules a value must follow, as JSON Schemas for the document, so a
//! client (or a fuzzer) that respects the schema is never refused for the
//! value's shape. Each matches the domain's check it documents (or is a
//! little stricter, never looser): names (`check_name`), slugs, emails,
//! passwords, URLs, statuses, roles, reasons. Used as
//! `#[schema(schema_with = constraints::name)]`.

use serde_json::{Value, json};
use utoipa::openapi::Object;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

/// No control characters (Rust's `char::is_control`: U+0000–001F, U+007F–009F).
const CTRL: &str = r"\u0000-\u001F\u007F-\u009F";

fn string(pattern: String, min: Option<usize>, max: usize, nullable: bool) -> Object {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::new(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .pattern(Some(pattern))
        .min_length(min)
        .max_length(Some(max))
        .build()
}

fn name_pattern() -> String {
    // Something besides white space, and no control character.
    format!(r"^[^{CTRL}]*[^\s{CTRL}][^{CTRL}]*$")
}

/// A display name: 1 to 200 characters after trimming, no control characters.
pub fn name() -> Object {
    string(name_pattern(), Some(1), 200, false)
}

/// The same, or `null` where the field clears.
pub fn name_or_null() -> Object {
    string(name_pattern(), Some(1), 200, true)
}

/// A name that may be left empty (a default is used): at most 200
/// characters, no control characters.
pub fn optional_name() -> Object {
    string(format!("^[^{CTRL}]*$"), None, 200, false)
}

/// `a-z`, `0-9` and `-`, 1 to 100, not starting or ending with `-`.
pub fn slug() -> Object {
    string(
        "^[a-z0-9]([a-z0-9-]{0,98}[a-z0-9])?$".into(),
        Some(1),
        100,
        false,
    )
}

/// An email address (`igny8_domain::tenancy::Email`): at most 254
/// characters, no white space or control character, one `@` after a
/// non-empty local part, a domain with a dot, not starting or ending with one.
pub fn email() -> Object {
    let c = format!(r"[^@\s{CTRL}]");
    let edge = format!(r"[^@.\s{CTRL}]");
    string(
        format!("^{c}+@{edge}{c}*\\.{c}*{edge}$"),
        Some(5),
        254,
        false,
    )
}

/// 8 to 1024 characters.
pub fn password() -> Object {
    string("^[^\\u0000]*$".into(), Some(8), 1024, false)
}

fn url_pattern() -> String {
    // More than 8 characters in all: `https://` and one more, or `http://` and two.
    format!(r"^(https://[^\s{CTRL}]+|http://[^\s{CTRL}]{{2,}})$")
}

/// An `http://` or `https://` URL of 9 to 2000 characters, no white space.
pub fn url() -> Object {
    string(url_pattern(), Some(9), 2000, false)
}

/// The same, or `null` to clear it.
pub fn url_or_null() -> Object {
    string(url_pattern(), Some(9), 2000, true)
}

/// Why (shown in the ledger): at most 500 characters, no control characters but tab and line breaks.
pub fn reason() -> Object {
    // The domain's `check_reason`: control characters refused, except tab,
    // line feed and carriage return (a reason may span lines).
    string(
        r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$".into(),
        None,
        500,
        false,
    )
}

/// `active` or `inactive`.
pub fn status() -> Object {
    crate::http::schema::string_enum(&["active", "inactive"])
}

/// A role that can be given: `admin`, `editor` or `viewer`.
pub fn grantable_role() -> Object {
    crate::http::schema::string_enum(&["admin", "editor", "viewer"])
}

/// An amount of credits: 0.001 to 10^12, at most 3 decimals.
pub fn credits() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0.001))
        .maximum(Some(1e12))
        .multiple_of(Some(0.001))
        .build()
}

/// `o`, or `null` (an `Option` field: `null` means the same as leaving it out).
pub fn or_null(mut o: Object) -> Object {
    o.schema_type = match o.schema_type {
        SchemaType::Type(t) => SchemaType::from_iter([t, Type::Null]),
        other => other,
    };
    if let Some(values) = o.enum_values.as_mut() {
        values.push(Value::Null);
    }
    o
}

/// Optional variants (`Option<String>` fields, which also take `null`).
pub fn name_opt() -> Object {
    or_null(name())
}
pub fn slug_opt() -> Object {
    or_null(slug())
}
pub fn url_opt() -> Object {
    or_null(url())
}
pub fn status_opt() -> Object {
    or_null(status())
}
pub fn grantable_role_opt() -> Object {
    or_null(grantable_role())
}

/// Rules between fields that a derive cannot state, merged into the named
/// body schemas by the contract pass.
pub fn cross_field_rules() -> Vec<(&'static str, Value)> {
    let mut rules = crate::automation::cross_field_rules();
    rules.extend(vec![
        (
            // An admin key sees every site: a site list is refused for it.
            "CreateKeyBody",
            json!({"oneOf": [
                {"properties": {"role": {"enum": ["admin"]}, "site_ids": {"maxItems": 0}}},
                {"properties": {"role": {"enum": ["editor", "viewer"]}}},
            ]}),
        ),
        (
            // Either a sector (all its keywords) or a list of keywords, not both.
            "AutoClusterBody",
            json!({"oneOf": [
                {"required": ["sector_id"],
                 "properties": {"sector_id": {"type": "string"}, "keyword_ids": {"type": "null"}}},
                {"required": ["keyword_ids"],
                 "properties": {"keyword_ids": {"type": "array", "minItems": 1}, "sector_id": {"type": "null"}}},
            ]}),
        ),
    ]);
    rules
}

/// One line of 1 to 300 characters after trimming (titles), no control characters.
pub fn title() -> Object {
    string(name_pattern(), Some(1), 300, false)
}

/// Text of up to `max` characters: no control characters but tab and line breaks.
fn text(max: usize) -> Object {
    string(
        r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$".into(),
        None,
        max,
        false,
    )
}

/// A description: at most 2,000 characters of text.
pub fn text_2000() -> Object {
    text(2000)
}

/// An idea's description: at most 5,000 characters of text.
pub fn text_5000() -> Object {
    text(5000)
}

/// A task's brief: at most 10,000 characters of text.
pub fn text_10000() -> Object {
    text(10_000)
}

/// A prompt template: 1 to 20,000 characters of text, not only white space.
pub fn template() -> Object {
    string(
        r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$".into(),
        Some(1),
        20_000,
        false,
    )
}

/// HTML sent by a person: 1 to 1,000,000 characters, not only white space,
/// no NUL (no text field takes U+0000; sanitised before it is stored).
pub fn html() -> Object {
    string(
        r"^[^\u0000]*[^\s\u0000][^\u0000]*$".into(),
        Some(1),
        1_000_000,
        false,
    )
}

/// A meta title: at most 60 characters, no control characters.
pub fn meta_title() -> Object {
    string(format!("^[^{CTRL}]*$"), None, 60, false)
}

/// A meta description: at most 160 characters, no control characters.
pub fn meta_description() -> Object {
    string(format!("^[^{CTRL}]*$"), None, 160, false)
}

fn array_of(items: Object, max: usize) -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(items)
        .max_items(Some(max))
        .build()
}

/// Keywords: at most 30, each 1 to 200 characters after trimming.
pub fn keywords() -> utoipa::openapi::schema::Array {
    array_of(name(), 30)
}

/// An outline's key points: at most 12, each 1 to 300 characters after trimming.
pub fn key_points() -> utoipa::openapi::schema::Array {
    array_of(title(), 12)
}

/// The same schema, or `null` (a change's field left as it is).
fn nullable_array(mut a: utoipa::openapi::schema::Array) -> utoipa::openapi::schema::Array {
    a.schema_type = SchemaType::from_iter([Type::Array, Type::Null]);
    a
}

pub fn title_or_null() -> Object {
    or_null(title())
}
pub fn text_2000_or_null() -> Object {
    or_null(text_2000())
}
pub fn text_5000_or_null() -> Object {
    or_null(text_5000())
}
pub fn text_10000_or_null() -> Object {
    or_null(text_10000())
}
pub fn optional_name_or_null() -> Object {
    or_null(optional_name())
}
pub fn html_or_null() -> Object {
    or_null(html())
}
pub fn meta_title_or_null() -> Object {
    or_null(meta_title())
}
pub fn meta_description_or_null() -> Object {
    or_null(meta_description())
}
pub fn keywords_or_null() -> utoipa::openapi::schema::Array {
    nullable_array(keywords())
}

/// An image prompt: 1 to 4,000 characters, not only white space, no control characters.
pub fn image_prompt() -> Object {
    string(name_pattern(), Some(1), 4000, false)
}
pub fn image_prompt_or_null() -> Object {
    or_null(image_prompt())
}
/// Alt text: at most 300 characters, no control characters.
pub fn alt_text_or_null() -> Object {
    or_null(string(format!("^[^{CTRL}]*$"), None, 300, false))
}
/// A caption: at most 500 characters, no control characters.
pub fn caption_or_null() -> Object {
    or_null(string(format!("^[^{CTRL}]*$"), None, 500, false))
}
/// The heading an image follows: 1 to 300 characters, no control characters.
pub fn placement_or_null() -> Object {
    or_null(string(name_pattern(), Some(1), 300, false))
}
