//! Whatever a provider returns is untrusted until [`check`] says it is a
//! real image: at most [`MAX_BYTES`], magic bytes of PNG, JPEG or WebP
//! that agree with the declared type, a header that decodes to at most
//! [`MAX_SIDE`] pixels a side, and a body that decodes to the end (a
//! truncated file fails).

use image::{ImageFormat, ImageReader, Limits};
use std::io::Cursor;

pub const MAX_BYTES: usize = 20 * 1024 * 1024;
pub const MAX_SIDE: u32 = 8192;

/// A checked image.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub mime_type: &'static str,
    pub width: u32,
    pub height: u32,
}

fn mime(f: ImageFormat) -> Option<&'static str> {
    match f {
        ImageFormat::Png => Some("image/png"),
        ImageFormat::Jpeg => Some("image/jpeg"),
        ImageFormat::WebP => Some("image/webp"),
        _ => None,
    }
}

/// Check `bytes`; `declared`: the MIME type the provider claimed (a
/// `Content-Type`, an output format), if it claimed one.
pub fn check(bytes: &[u8], declared: Option<&str>) -> Result<Checked, String> {
    if bytes.is_empty() {
        return Err("the provider returned an empty file".into());
    }
    if bytes.len() > MAX_BYTES {
        return Err(format!(
            "the image is {} bytes (at most {MAX_BYTES})",
            bytes.len()
        ));
    }
    let format = image::guess_format(bytes)
        .ok()
        .and_then(|f| mime(f).map(|m| (f, m)));
    let Some((format, mime_type)) = format else {
        return Err("the provider's answer is not a PNG, JPEG or WebP image".into());
    };
    if let Some(d) = declared {
        let d = d
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let d = if d == "image/jpg" {
            "image/jpeg".into()
        } else {
            d
        };
        if !d.is_empty() && d != "application/octet-stream" && d != mime_type {
            return Err(format!(
                "the provider declared {d} but sent {mime_type} bytes"
            ));
        }
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    let reader = |l: Limits| {
        let mut r = ImageReader::with_format(Cursor::new(bytes), format);
        r.limits(l);
        r
    };
    let (width, height) = reader(limits.clone())
        .into_dimensions()
        .map_err(|e| format!("the image's header is not readable: {e}"))?;
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "the image is {width}×{height} (at most {MAX_SIDE} a side)"
        ));
    }
    reader(limits)
        .decode()
        .map_err(|e| format!("the image does not decode (truncated or corrupt): {e}"))?;
    Ok(Checked {
        mime_type,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_images_pass_and_lies_fail() {
        let png = super::super::offline::png("a lighthouse", 64, 48);
        let ok = check(&png, Some("image/png")).unwrap();
        assert_eq!((ok.mime_type, ok.width, ok.height), ("image/png", 64, 48));
        assert!(check(&png, None).is_ok());
        assert!(
            check(&png, Some("image/jpeg"))
                .unwrap_err()
                .contains("declared")
        );
        assert!(check(b"<html>nope</html>", Some("image/png")).is_err());
        let cut = &png[..png.len() / 2];
        assert!(
            check(cut, None).unwrap_err().contains("decode"),
            "truncated"
        );
        assert!(
            check(&vec![0u8; MAX_BYTES + 1], None)
                .unwrap_err()
                .contains("bytes")
        );
        assert!(check(&[], None).is_err());
    }
}
