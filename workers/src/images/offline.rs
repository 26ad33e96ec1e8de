//! The offline image provider: a real PNG made locally from the prompt,
//! deterministically (the same prompt and size give the same bytes), so
//! the whole pipeline runs with no network.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, RgbImage};
use sha2::{Digest, Sha256};

/// A PNG of `width`×`height` whose colours and bands come from the prompt.
pub fn png(prompt: &str, width: u32, height: u32) -> Vec<u8> {
    let seed = Sha256::digest(prompt.as_bytes());
    let c = |i: usize| [seed[i], seed[i + 1], seed[i + 2]];
    let (a, b, band) = (c(0), c(3), c(6));
    let bands = 3 + u32::from(seed[9] % 6);
    let tilt = u32::from(seed[10] % 4);
    let mut img = RgbImage::new(width.max(1), height.max(1));
    let (w, h) = (img.width(), img.height());
    for (x, y, p) in img.enumerate_pixels_mut() {
        // A vertical gradient from `a` to `b`, crossed by tilted bands.
        let t = y * 255 / h.max(1);
        let mix = |i: usize| ((u32::from(a[i]) * (255 - t) + u32::from(b[i]) * t) / 255) as u8;
        let stripe = ((x + y * tilt) * bands / w.max(1)) % 2 == 0;
        p.0 = if stripe {
            [mix(0), mix(1), mix(2)]
        } else {
            [
                ((u16::from(mix(0)) + u16::from(band[0])) / 2) as u8,
                ((u16::from(mix(1)) + u16::from(band[1])) / 2) as u8,
                ((u16::from(mix(2)) + u16::from(band[2])) / 2) as u8,
            ]
        };
    }
    let mut out = Vec::with_capacity((w * h) as usize / 4);
    // Encoding into a Vec cannot fail for a valid RGB buffer.
    let _ = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn deterministic_and_sized() {
        let a = super::png("a red fox", 128, 64);
        assert_eq!(a, super::png("a red fox", 128, 64));
        assert_ne!(a, super::png("a blue fox", 128, 64));
        assert_eq!(&a[1..4], b"PNG");
    }
}
