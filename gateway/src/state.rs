//! The application state every handler receives: the command bus, the
//! database, the feed, NATS (scale-out), settings, keys and rate limits.

use crate::auth::{Keys, Limits};
use crate::config::Settings;
use igny8_commands::{CommandBus, Db, Feed};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct AppState {
    pub bus: CommandBus,
    pub db: Db,
    pub feed: Feed,
    pub nats: Option<async_nats::Client>,
    pub settings: Arc<Settings>,
    pub keys: Arc<Keys>,
    pub limits: Arc<Limits>,
    /// Media storage of images (`None`: it could not be opened; file
    /// routes answer 503).
    pub media: Option<igny8_workers::images::MediaStore>,
    /// Connection tests talk to WordPress from here.
    pub wp: igny8_workers::publishing::WpClient,
    /// What time it is for automation (tests set it by hand).
    pub clock: Arc<dyn igny8_commands::automation::Clock>,
}

impl AppState {
    /// Fails on malformed key configuration.
    pub fn new(
        db: Db,
        nats: Option<async_nats::Client>,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let keys = Keys::load(&settings)?;
        Ok(Self::with_keys(db, nats, settings, keys))
    }

    pub fn with_keys(
        db: Db,
        nats: Option<async_nats::Client>,
        settings: Settings,
        keys: Keys,
    ) -> Self {
        let bus = CommandBus::new(db.clone());
        let feed = bus.feed();
        let limits = Limits::new(settings.rate_per_minute, settings.login_per_minute);
        let media = match igny8_workers::images::MediaStore::open(
            settings.media_url.as_deref(),
            &settings.data_dir,
        ) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::error!(error = %e, "media storage cannot be opened; image files answer 503");
                None
            }
        };
        Self {
            clock: settings.clock(),
            wp: igny8_workers::publishing::WpClient::new(settings.wp_options()),
            media,
            bus,
            db,
            feed,
            nats,
            settings: Arc::new(settings),
            keys: Arc::new(keys),
            limits: Arc::new(limits),
        }
    }

    /// The longest a query waits for `min_position`.
    pub fn read_wait(&self) -> Duration {
        Duration::from_millis(self.settings.read_wait_ms)
    }
}
