//! Images for articles: prompts from an article ([`prompts`]), images
//! from a provider behind one interface ([`ImageProvider`]: offline,
//! OpenAI-compatible `/images/generations`, Runware), every answer
//! checked before it is kept ([`check`]), provider URLs fetched safely
//! ([`fetch`]), bytes in content-addressed media storage ([`media`]).
//! The jobs that use them are `jobs::prompts` and `jobs::images`.

pub mod check;
pub mod fetch;
pub mod media;
pub mod offline;
pub mod prompts;
pub mod providers;

pub use fetch::Fetcher;
pub use media::MediaStore;
pub use providers::{ImageProvider, Made};

/// `WIDTHxHEIGHT` → (width, height).
pub fn parse_size(size: &str) -> Option<(u32, u32)> {
    let (w, h) = size.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}
