//! Why a ramp or a soak could not run; `siphon-load` prints the text.

use siphon_testkit::browser::BrowserError;

use super::scrape::ScrapeError;

/// Why [`crate::run`] or [`crate::soak::run`] stopped before a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A ramp without destinations or setup rate.
    #[error("nothing to dial, or no setup rate")]
    NothingToDial,
    /// A soak without destinations, calls or setup rate.
    #[error("nothing to dial, no calls, or no setup rate")]
    NothingToSoak,
    /// The browsers' certificate could not be made.
    #[error(transparent)]
    Identity(#[from] BrowserError),
    /// siphon's figures could not be read.
    #[error(transparent)]
    Scrape(#[from] ScrapeError),
}
