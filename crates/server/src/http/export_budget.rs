//! The export budget: how many exports may run at once, per company and in all, so that one
//! tenant's exports cannot take the database's connections (or its snapshots) from the
//! others (`docs/robustness.md#fair-sharing-exports-and-long-reads`).

use contactd_api::ErrorCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;

use super::error::ApiError;
use crate::config::{DEFAULT_MAX_EXPORTS, DEFAULT_MAX_EXPORTS_PER_COMPANY};
use crate::prometheus::EXPORTS_REFUSED;

/// Exports running now, by company, against their limits.
#[derive(Debug)]
pub struct ExportBudget {
    /// The most exports running at once, in all.
    pub total: usize,
    /// The most exports one company runs at once.
    pub per_company: usize,
    running: Mutex<HashMap<Uuid, usize>>,
}

impl ExportBudget {
    /// A budget of `total` exports at once, `per_company` of them for one company.
    pub fn new(total: usize, per_company: usize) -> Self {
        Self {
            total,
            per_company,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an export of `company` as running until the permit is dropped, or answers
    /// 429 when the company or the server runs as many as allowed already.
    pub fn start(self: &Arc<Self>, company: Uuid) -> Result<ExportPermit, ApiError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let in_all: usize = running.values().sum();
        let of_company = running.get(&company).copied().unwrap_or(0);
        if of_company >= self.per_company {
            metrics::counter!(EXPORTS_REFUSED, "limit" => "company").increment(1);
            return Err(ApiError::TooManyRequests {
                code: ErrorCode::TooManyExports,
                message: format!(
                    "your company already runs {of_company} exports, the most allowed at once; \
                     retry when one has finished"
                ),
            });
        }
        if in_all >= self.total {
            metrics::counter!(EXPORTS_REFUSED, "limit" => "server").increment(1);
            return Err(ApiError::TooManyRequests {
                code: ErrorCode::TooManyExports,
                message: "the server runs as many exports as it allows at once; retry shortly"
                    .to_owned(),
            });
        }
        *running.entry(company).or_default() += 1;
        Ok(ExportPermit {
            budget: self.clone(),
            company,
        })
    }
}

impl Default for ExportBudget {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EXPORTS, DEFAULT_MAX_EXPORTS_PER_COMPANY)
    }
}

/// One running export; dropping it ends its count.
#[derive(Debug)]
pub struct ExportPermit {
    budget: Arc<ExportBudget>,
    company: Uuid,
}

impl Drop for ExportPermit {
    fn drop(&mut self) {
        let mut running = self
            .budget
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = running.get_mut(&self.company) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.company);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_company_and_the_server_each_run_at_most_their_share() {
        let budget = Arc::new(ExportBudget::new(3, 2));
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let first = budget.start(a).expect("a's first");
        let _second = budget.start(a).expect("a's second");
        assert!(budget.start(a).is_err(), "a third for one company");
        let _b = budget.start(b).expect("b's first");
        assert!(budget.start(c).is_err(), "a fourth in all");
        drop(first);
        let _c = budget.start(c).expect("room again once one ends");
    }
}
