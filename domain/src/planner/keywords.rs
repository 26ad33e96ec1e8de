//! The `sector_keywords` aggregate: a sector's keywords and their clusters.
//!
//! Keywords are identified by [`keyword_id`] (UUIDv5 of the sector and the
//! [`normalize`]d text), so the state is only the set of ids, the saved
//! clustering runs and the existing clusters; the keywords' figures live in
//! the events. Large commands are split into chunk events committed
//! together: additions of at most [`CHUNK`] keywords, saved clustering runs
//! of about 2 × `CHUNK` keyword ids (whole clusters), deletions of at most
//! 4 × `CHUNK` ids.

use crate::{Aggregate, DomainError, DomainEvent, ErrorKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

/// Keywords per event: ~200 bytes each, so an event stays near 400 KB.
pub const CHUNK: usize = 2000;
pub const MAX_KEYWORD_CHARS: usize = 200;
pub const MAX_VOLUME: i64 = 10_000_000_000;
pub const MAX_CPC: f64 = 100_000.0;

/// NFKC, lower case, runs of white space folded to one space, trimmed: two
/// keywords with the same normal form are the same keyword.
pub fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    for c in raw.nfkc().flat_map(char::to_lowercase) {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// 1 to [`MAX_KEYWORD_CHARS`] characters once normalised, no control characters.
fn valid_text(raw: &str, norm: &str) -> bool {
    !norm.is_empty()
        && norm.chars().count() <= MAX_KEYWORD_CHARS
        && !raw.chars().any(|c| c.is_control() && c != ' ')
}

/// The id of a keyword in a sector: UUIDv5 of the sector and its normal form.
pub fn keyword_id(sector_id: Uuid, normalized: &str) -> Uuid {
    Uuid::new_v5(&sector_id, normalized.as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    Informational,
    Navigational,
    Commercial,
    Transactional,
}

impl Intent {
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Informational => "informational",
            Intent::Navigational => "navigational",
            Intent::Commercial => "commercial",
            Intent::Transactional => "transactional",
        }
    }
    /// Also the usual one-letter codes of keyword tools (I, N, C, T).
    pub fn parse(s: &str) -> Option<Intent> {
        match s.trim().to_lowercase().as_str() {
            "informational" | "i" | "info" => Some(Intent::Informational),
            "navigational" | "n" | "nav" => Some(Intent::Navigational),
            "commercial" | "c" => Some(Intent::Commercial),
            "transactional" | "t" => Some(Intent::Transactional),
            _ => None,
        }
    }
}

/// One keyword as added (the text as given; its id comes from the normal form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeywordData {
    pub id: Uuid,
    pub keyword: String,
    pub volume: i64,
    pub difficulty: i64,
    pub intent: Option<Intent>,
    pub cpc: Option<f64>,
}

/// A change of a keyword's figures (`None`: unchanged; `Some(None)`: cleared).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeywordChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub intent: Option<Option<Intent>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub cpc: Option<Option<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A field that is present reads as `Some`, also when it is `null`
/// (`Some(None)`: cleared); an absent field is `None` through `default`.
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlannerError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("keyword must be 1 to {MAX_KEYWORD_CHARS} characters, without control characters")]
    InvalidKeyword,
    #[error("volume must be a whole number from 0 to {MAX_VOLUME}")]
    InvalidVolume,
    #[error("difficulty must be a whole number from 0 to 100")]
    InvalidDifficulty,
    #[error("cpc must be a number from 0 to {MAX_CPC}")]
    InvalidCpc,
    #[error("status must be active or inactive")]
    InvalidStatus,
    #[error("the keywords belong to another site")]
    WrongSite,
    #[error("nothing to change")]
    Empty,
    #[error("name must be 1 to {MAX_KEYWORD_CHARS} characters, without control characters")]
    InvalidName,
    #[error("at most 100000 keywords at once")]
    TooMany,
}

impl DomainError for PlannerError {
    fn code(&self) -> &'static str {
        match self {
            PlannerError::NotFound(_) => "NOT_FOUND",
            PlannerError::InvalidKeyword => "INVALID_KEYWORD",
            PlannerError::InvalidVolume => "INVALID_VOLUME",
            PlannerError::InvalidDifficulty => "INVALID_DIFFICULTY",
            PlannerError::InvalidCpc => "INVALID_CPC",
            PlannerError::InvalidStatus => "INVALID_STATUS",
            PlannerError::WrongSite => "VALIDATION_ERROR",
            PlannerError::Empty => "VALIDATION_ERROR",
            PlannerError::InvalidName => "INVALID_NAME",
            PlannerError::TooMany => "VALIDATION_ERROR",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            PlannerError::NotFound(_) => ErrorKind::NotFound,
            _ => ErrorKind::Validation,
        }
    }
}

impl KeywordData {
    /// A checked keyword of `sector_id` (its id from the normal form).
    pub fn new(
        sector_id: Uuid,
        keyword: &str,
        volume: i64,
        difficulty: i64,
        intent: Option<Intent>,
        cpc: Option<f64>,
    ) -> Result<KeywordData, PlannerError> {
        let keyword = keyword.trim();
        let norm = normalize(keyword);
        if !valid_text(keyword, &norm) {
            return Err(PlannerError::InvalidKeyword);
        }
        check_figures(Some(volume), Some(difficulty), cpc)?;
        Ok(KeywordData {
            id: keyword_id(sector_id, &norm),
            keyword: keyword.split_whitespace().collect::<Vec<_>>().join(" "),
            volume,
            difficulty,
            intent,
            cpc,
        })
    }
}

fn check_figures(
    volume: Option<i64>,
    difficulty: Option<i64>,
    cpc: Option<f64>,
) -> Result<(), PlannerError> {
    if volume.is_some_and(|v| !(0..=MAX_VOLUME).contains(&v)) {
        return Err(PlannerError::InvalidVolume);
    }
    if difficulty.is_some_and(|d| !(0..=100).contains(&d)) {
        return Err(PlannerError::InvalidDifficulty);
    }
    if cpc.is_some_and(|c| !c.is_finite() || !(0.0..=MAX_CPC).contains(&c)) {
        return Err(PlannerError::InvalidCpc);
    }
    Ok(())
}

/// One cluster of a clustering run: its keywords and the figures shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    pub cluster_id: Uuid,
    /// The most representative keyword (highest volume).
    pub name: String,
    pub description: String,
    pub keyword_ids: Vec<Uuid>,
    pub total_volume: i64,
    pub avg_difficulty: f64,
    pub dominant_intent: Option<Intent>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SectorKeywords {
    pub opened: bool,
    pub account_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    /// Every keyword id of the sector (ids derive from the normal form).
    pub ids: BTreeSet<Uuid>,
    /// Clustering runs already saved (a retried job saves nothing twice).
    #[serde(default)]
    pub runs: BTreeSet<Uuid>,
    /// The clusters that exist (id → name).
    #[serde(default)]
    pub clusters: std::collections::BTreeMap<Uuid, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SectorKeywordsCommand {
    /// Add keywords; those already in the sector (or repeated in the batch) are skipped.
    Add {
        account_id: Uuid,
        site_id: Uuid,
        keywords: Vec<KeywordData>,
        source: String,
    },
    Update {
        id: Uuid,
        change: KeywordChange,
    },
    Delete {
        ids: Vec<Uuid>,
    },
    /// Save a clustering run (the job id): the clusters replace the previous
    /// assignment of their keywords; the previous one stays in the log.
    AssignClusters {
        run_id: Uuid,
        clusters: Vec<ClusterSummary>,
    },
    RenameCluster {
        cluster_id: Uuid,
        name: String,
    },
    /// The keywords of `from` move into `into`; `from` clusters are gone.
    MergeClusters {
        into: Uuid,
        from: Vec<Uuid>,
    },
    /// Keywords move to a cluster (`None`: no cluster).
    MoveKeywords {
        keyword_ids: Vec<Uuid>,
        cluster_id: Option<Uuid>,
    },
    /// A new cluster takes these keywords out of theirs.
    SplitCluster {
        from: Uuid,
        new_cluster_id: Uuid,
        name: String,
        keyword_ids: Vec<Uuid>,
    },
    /// The cluster is gone; its keywords have no cluster.
    DeleteCluster {
        cluster_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SectorKeywordsEvent {
    KeywordSetOpened {
        account_id: Uuid,
        site_id: Uuid,
    },
    /// One chunk of an addition (an import of 100,000 keywords is 50 of these,
    /// committed together).
    KeywordsAdded {
        keywords: Vec<KeywordData>,
        source: String,
        chunk: u32,
        chunks: u32,
    },
    KeywordUpdated {
        id: Uuid,
        change: KeywordChange,
    },
    KeywordsDeleted {
        ids: Vec<Uuid>,
    },
    /// One chunk of a clustering run's clusters.
    ClustersAssigned {
        run_id: Uuid,
        clusters: Vec<ClusterSummary>,
        chunk: u32,
        chunks: u32,
    },
    ClusterRenamed {
        cluster_id: Uuid,
        name: String,
    },
    ClustersMerged {
        into: Uuid,
        from: Vec<Uuid>,
    },
    KeywordsMoved {
        keyword_ids: Vec<Uuid>,
        cluster_id: Option<Uuid>,
    },
    ClusterSplit {
        from: Uuid,
        new_cluster_id: Uuid,
        name: String,
        keyword_ids: Vec<Uuid>,
    },
    ClusterDeleted {
        cluster_id: Uuid,
    },
}

impl DomainEvent for SectorKeywordsEvent {
    fn event_type(&self) -> &'static str {
        match self {
            SectorKeywordsEvent::KeywordSetOpened { .. } => "KeywordSetOpened",
            SectorKeywordsEvent::KeywordsAdded { .. } => "KeywordsAdded",
            SectorKeywordsEvent::KeywordUpdated { .. } => "KeywordUpdated",
            SectorKeywordsEvent::KeywordsDeleted { .. } => "KeywordsDeleted",
            SectorKeywordsEvent::ClustersAssigned { .. } => "ClustersAssigned",
            SectorKeywordsEvent::ClusterRenamed { .. } => "ClusterRenamed",
            SectorKeywordsEvent::ClustersMerged { .. } => "ClustersMerged",
            SectorKeywordsEvent::KeywordsMoved { .. } => "KeywordsMoved",
            SectorKeywordsEvent::ClusterSplit { .. } => "ClusterSplit",
            SectorKeywordsEvent::ClusterDeleted { .. } => "ClusterDeleted",
        }
    }
}

impl SectorKeywords {
    /// The sector's keywords among `ids` (sorted, unique); none → not found.
    fn known(&self, ids: Vec<Uuid>) -> Result<Vec<Uuid>, PlannerError> {
        if ids.len() > 100_000 {
            return Err(PlannerError::TooMany);
        }
        let mut ids: Vec<Uuid> = ids.into_iter().filter(|i| self.ids.contains(i)).collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Err(PlannerError::NotFound("keyword"));
        }
        Ok(ids)
    }
}

impl Aggregate for SectorKeywords {
    const TYPE: &'static str = "sector_keywords";
    type Command = SectorKeywordsCommand;
    type Event = SectorKeywordsEvent;
    type Error = PlannerError;

    fn decide(
        &self,
        command: SectorKeywordsCommand,
    ) -> Result<Vec<SectorKeywordsEvent>, PlannerError> {
        match command {
            SectorKeywordsCommand::Add {
                account_id,
                site_id,
                keywords,
                source,
            } => {
                let mut events = vec![];
                if !self.opened {
                    events.push(SectorKeywordsEvent::KeywordSetOpened {
                        account_id,
                        site_id,
                    });
                } else if self.site_id != Some(site_id) || self.account_id != Some(account_id) {
                    return Err(PlannerError::WrongSite);
                }
                let mut seen = BTreeSet::new();
                let fresh: Vec<KeywordData> = keywords
                    .into_iter()
                    .filter(|k| !self.ids.contains(&k.id) && seen.insert(k.id))
                    .collect();
                for k in &fresh {
                    if !valid_text(&k.keyword, &normalize(&k.keyword)) {
                        return Err(PlannerError::InvalidKeyword);
                    }
                    check_figures(Some(k.volume), Some(k.difficulty), k.cpc)?;
                }
                let chunks = fresh.len().div_ceil(CHUNK) as u32;
                for (i, part) in fresh.chunks(CHUNK).enumerate() {
                    events.push(SectorKeywordsEvent::KeywordsAdded {
                        keywords: part.to_vec(),
                        source: source.clone(),
                        chunk: i as u32 + 1,
                        chunks,
                    });
                }
                Ok(events)
            }
            SectorKeywordsCommand::Update { id, change } => {
                if !self.ids.contains(&id) {
                    return Err(PlannerError::NotFound("keyword"));
                }
                if change == KeywordChange::default() {
                    return Err(PlannerError::Empty);
                }
                check_figures(change.volume, change.difficulty, change.cpc.flatten())?;
                if change
                    .status
                    .as_deref()
                    .is_some_and(|s| s != "active" && s != "inactive")
                {
                    return Err(PlannerError::InvalidStatus);
                }
                Ok(vec![SectorKeywordsEvent::KeywordUpdated { id, change }])
            }
            SectorKeywordsCommand::AssignClusters { run_id, clusters } => {
                if self.runs.contains(&run_id) {
                    return Ok(vec![]);
                }
                if !self.opened {
                    return Err(PlannerError::NotFound("keyword"));
                }
                // Chunks of about 2 × CHUNK keyword ids, whole clusters each.
                let mut chunks: Vec<Vec<ClusterSummary>> = vec![vec![]];
                let mut size = 0;
                for c in clusters {
                    let kept: Vec<Uuid> = c
                        .keyword_ids
                        .iter()
                        .copied()
                        .filter(|i| self.ids.contains(i))
                        .collect();
                    if kept.is_empty() {
                        continue;
                    }
                    if size > 0 && size + kept.len() > CHUNK * 2 {
                        chunks.push(vec![]);
                        size = 0;
                    }
                    size += kept.len();
                    if let Some(last) = chunks.last_mut() {
                        last.push(ClusterSummary {
                            keyword_ids: kept,
                            ..c
                        });
                    }
                }
                let n = chunks.len() as u32;
                Ok(chunks
                    .into_iter()
                    .enumerate()
                    .map(|(i, clusters)| SectorKeywordsEvent::ClustersAssigned {
                        run_id,
                        clusters,
                        chunk: i as u32 + 1,
                        chunks: n,
                    })
                    .collect())
            }
            SectorKeywordsCommand::RenameCluster { cluster_id, name } => {
                let current = self
                    .clusters
                    .get(&cluster_id)
                    .ok_or(PlannerError::NotFound("cluster"))?;
                let name = name.trim().to_string();
                if !valid_text(&name, &normalize(&name)) {
                    return Err(PlannerError::InvalidName);
                }
                if *current == name {
                    return Ok(vec![]);
                }
                Ok(vec![SectorKeywordsEvent::ClusterRenamed {
                    cluster_id,
                    name,
                }])
            }
            SectorKeywordsCommand::MergeClusters { into, from } => {
                if !self.clusters.contains_key(&into) {
                    return Err(PlannerError::NotFound("cluster"));
                }
                if from.is_empty() {
                    return Err(PlannerError::Empty);
                }
                // A cluster merged into itself is merged already: nothing to do.
                let mut from: Vec<Uuid> = from.into_iter().filter(|f| *f != into).collect();
                from.sort();
                from.dedup();
                if from.is_empty() {
                    return Ok(vec![]);
                }
                if from.iter().any(|f| !self.clusters.contains_key(f)) {
                    return Err(PlannerError::NotFound("cluster"));
                }
                Ok(vec![SectorKeywordsEvent::ClustersMerged { into, from }])
            }
            SectorKeywordsCommand::MoveKeywords {
                keyword_ids,
                cluster_id,
            } => {
                if cluster_id.is_some_and(|c| !self.clusters.contains_key(&c)) {
                    return Err(PlannerError::NotFound("cluster"));
                }
                let ids = self.known(keyword_ids)?;
                Ok(vec![SectorKeywordsEvent::KeywordsMoved {
                    keyword_ids: ids,
                    cluster_id,
                }])
            }
            SectorKeywordsCommand::SplitCluster {
                from,
                new_cluster_id,
                name,
                keyword_ids,
            } => {
                if !self.clusters.contains_key(&from) {
                    return Err(PlannerError::NotFound("cluster"));
                }
                if self.clusters.contains_key(&new_cluster_id) {
                    return Ok(vec![]);
                }
                let name = name.trim().to_string();
                if !valid_text(&name, &normalize(&name)) {
                    return Err(PlannerError::InvalidName);
                }
                let ids = self.known(keyword_ids)?;
                Ok(vec![SectorKeywordsEvent::ClusterSplit {
                    from,
                    new_cluster_id,
                    name,
                    keyword_ids: ids,
                }])
            }
            SectorKeywordsCommand::DeleteCluster { cluster_id } => {
                if !self.clusters.contains_key(&cluster_id) {
                    return Err(PlannerError::NotFound("cluster"));
                }
                Ok(vec![SectorKeywordsEvent::ClusterDeleted { cluster_id }])
            }
            SectorKeywordsCommand::Delete { ids } => {
                let mut present: Vec<Uuid> =
                    ids.into_iter().filter(|i| self.ids.contains(i)).collect();
                present.sort();
                present.dedup();
                if present.is_empty() {
                    return Err(PlannerError::NotFound("keyword"));
                }
                Ok(present
                    .chunks(CHUNK * 4)
                    .map(|c| SectorKeywordsEvent::KeywordsDeleted { ids: c.to_vec() })
                    .collect())
            }
        }
    }

    fn apply(&mut self, event: &SectorKeywordsEvent) {
        match event {
            SectorKeywordsEvent::KeywordSetOpened {
                account_id,
                site_id,
            } => {
                self.opened = true;
                self.account_id = Some(*account_id);
                self.site_id = Some(*site_id);
            }
            SectorKeywordsEvent::KeywordsAdded { keywords, .. } => {
                self.ids.extend(keywords.iter().map(|k| k.id));
            }
            SectorKeywordsEvent::KeywordUpdated { .. } => {}
            SectorKeywordsEvent::ClustersAssigned {
                run_id, clusters, ..
            } => {
                self.runs.insert(*run_id);
                for c in clusters {
                    self.clusters.insert(c.cluster_id, c.name.clone());
                }
            }
            SectorKeywordsEvent::ClusterRenamed { cluster_id, name } => {
                self.clusters.insert(*cluster_id, name.clone());
            }
            SectorKeywordsEvent::ClustersMerged { from, .. } => {
                for f in from {
                    self.clusters.remove(f);
                }
            }
            SectorKeywordsEvent::KeywordsMoved { .. } => {}
            SectorKeywordsEvent::ClusterSplit {
                new_cluster_id,
                name,
                ..
            } => {
                self.clusters.insert(*new_cluster_id, name.clone());
            }
            SectorKeywordsEvent::ClusterDeleted { cluster_id } => {
                self.clusters.remove(cluster_id);
            }
            SectorKeywordsEvent::KeywordsDeleted { ids } => {
                for i in ids {
                    self.ids.remove(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(sector: Uuid, k: &str) -> KeywordData {
        KeywordData::new(sector, k, 10, 20, None, None).unwrap()
    }

    #[test]
    fn a_cleared_figure_reads_back_as_cleared() {
        for change in [
            KeywordChange {
                intent: Some(None),
                cpc: Some(None),
                ..Default::default()
            },
            KeywordChange {
                intent: Some(Some(Intent::Commercial)),
                cpc: Some(Some(1.5)),
                ..Default::default()
            },
            KeywordChange {
                volume: Some(3),
                ..Default::default()
            },
        ] {
            let json = serde_json::to_value(&change).unwrap();
            let back: KeywordChange = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(back, change, "{json}");
        }
    }

    #[test]
    fn one_keyword_per_normal_form_and_chunked_events() {
        let (sector, account, site) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(kw(sector, "Best  CRM").id, kw(sector, "best crm").id);
        assert_eq!(
            kw(sector, "ｂｅｓｔ crm").id,
            kw(sector, "best crm").id,
            "NFKC"
        );
        let mut state = SectorKeywords::default();
        let mut batch: Vec<KeywordData> =
            (0..4500).map(|i| kw(sector, &format!("kw {i}"))).collect();
        batch.push(kw(sector, "KW 1"));
        let events = state
            .decide(SectorKeywordsCommand::Add {
                account_id: account,
                site_id: site,
                keywords: batch,
                source: "import".into(),
            })
            .unwrap();
        assert_eq!(events.len(), 1 + 3, "opened + 3 chunks");
        for e in &events {
            state.apply(e);
        }
        assert_eq!(state.ids.len(), 4500);
        let again = state
            .decide(SectorKeywordsCommand::Add {
                account_id: account,
                site_id: site,
                keywords: vec![kw(sector, "kw 7"), kw(sector, "new one")],
                source: "manual".into(),
            })
            .unwrap();
        match &again[..] {
            [SectorKeywordsEvent::KeywordsAdded { keywords, .. }] => assert_eq!(keywords.len(), 1),
            other => panic!("{other:?}"),
        }
        assert!(KeywordData::new(sector, "x", -1, 0, None, None).is_err());
        assert!(KeywordData::new(sector, "x", 0, 101, None, None).is_err());
        assert!(KeywordData::new(sector, "   ", 0, 1, None, None).is_err());
        assert!(KeywordData::new(sector, &"x".repeat(201), 0, 1, None, None).is_err());
        assert!(KeywordData::new(sector, "x", 0, 1, None, Some(f64::NAN)).is_err());
        assert!(KeywordData::new(sector, "nul\0byte", 0, 1, None, None).is_err());
        assert_eq!(Intent::parse("T"), Some(Intent::Transactional));
    }
}
