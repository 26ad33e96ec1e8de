//! Media storage: image bytes behind one interface (`object_store`), the
//! local filesystem under the data dir on the embedded default, any
//! S3-compatible bucket (`s3://bucket?endpoint=…&region=…`, credentials
//! from the usual `AWS_*` environment) when gateways and workers run on
//! several machines. Objects are content-addressed: the key is the
//! SHA-256 of the bytes, so the same bytes are stored once and an object
//! is never rewritten or removed by one content (another content's image
//! may share it).

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media storage failed: {0}")]
    Storage(String),
    #[error("not a SHA-256: {0}")]
    BadKey(String),
}

impl From<object_store::Error> for MediaError {
    fn from(e: object_store::Error) -> Self {
        MediaError::Storage(e.to_string())
    }
}

#[derive(Clone)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    /// Where it stores (for logs; credentials are never in it).
    pub location: String,
}

/// Hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn key(sha: &str) -> Result<Path, MediaError> {
    if sha.len() != 64
        || !sha
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(MediaError::BadKey(sha.into()));
    }
    Ok(Path::from(format!("sha256/{}/{}", &sha[..2], sha)))
}

impl MediaStore {
    /// `url`: `s3://bucket?endpoint=…&region=…&allow_http=true`, `file:///dir`,
    /// or `None` for `<data_dir>/media`.
    pub fn open(url: Option<&str>, data_dir: &std::path::Path) -> anyhow::Result<Self> {
        match url {
            Some(u) if u.starts_with("s3://") => {
                let parsed = url::Url::parse(u)?;
                let bucket = parsed
                    .host_str()
                    .ok_or_else(|| anyhow::anyhow!("{u}: no bucket"))?
                    .to_string();
                let mut b = AmazonS3Builder::from_env().with_bucket_name(&bucket);
                for (k, v) in parsed.query_pairs() {
                    b = match k.as_ref() {
                        "endpoint" => b.with_endpoint(v.to_string()),
                        "region" => b.with_region(v.to_string()),
                        "allow_http" => b.with_allow_http(v == "true"),
                        other => anyhow::bail!("{u}: unknown option {other}"),
                    };
                }
                if parsed
                    .query_pairs()
                    .any(|(k, v)| k == "endpoint" && v.starts_with("http://"))
                {
                    b = b.with_allow_http(true);
                }
                Ok(Self {
                    store: Arc::new(b.build()?),
                    location: format!("s3://{bucket}"),
                })
            }
            Some(u) if u.starts_with("file://") => Self::local(std::path::Path::new(&u[7..])),
            Some(u) => anyhow::bail!("media storage {u}: use s3://bucket or file:///dir"),
            None => Self::local(&data_dir.join("media")),
        }
    }

    fn local(dir: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            store: Arc::new(LocalFileSystem::new_with_prefix(dir)?),
            location: format!("file://{}", dir.display()),
        })
    }

    /// Store `bytes` (once: an object with the same hash is left as it is);
    /// their SHA-256.
    pub async fn put(&self, bytes: &[u8]) -> Result<String, MediaError> {
        let sha = sha256(bytes);
        let k = key(&sha)?;
        match self.store.head(&k).await {
            Ok(meta) if meta.size == bytes.len() as u64 => return Ok(sha),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.store
            .put(&k, Bytes::copy_from_slice(bytes).into())
            .await?;
        Ok(sha)
    }

    /// The bytes stored under `sha` (`None`: no such object).
    pub async fn get(&self, sha: &str) -> Result<Option<Bytes>, MediaError> {
        match self.store.get(&key(sha)?).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object is stored under `sha`.
    pub async fn exists(&self, sha: &str) -> Result<bool, MediaError> {
        match self.store.head(&key(sha)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_same_bytes_are_stored_once() {
        let dir = std::env::temp_dir().join(format!("igny8-media-{}", uuid::Uuid::new_v4()));
        let m = MediaStore::open(None, &dir).unwrap();
        let a = m.put(b"hello").await.unwrap();
        assert_eq!(a, m.put(b"hello").await.unwrap());
        assert_eq!(m.get(&a).await.unwrap().unwrap().as_ref(), b"hello");
        assert!(m.get(&sha256(b"other")).await.unwrap().is_none());
        assert!(m.get("../../etc/passwd").await.is_err());
        let files = walk(&dir.join("media"));
        assert_eq!(files, 1, "one object");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn walk(p: &std::path::Path) -> usize {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
}
