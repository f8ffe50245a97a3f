//! What every use case acts on: the store, the region phone numbers are read in, and each
//! company's custom field definitions, cached.

use std::sync::Arc;

use uuid::Uuid;

use crate::cache::TtlCache;
use crate::domain::DefaultRegion;
use crate::store::{FieldDefinition, Store, StoreError};

/// The contacts and custom fields of every company, as the use cases reach them.
#[derive(Debug, Clone)]
pub struct Directory {
    pub store: Arc<dyn Store>,
    /// The region numbers without a `+`/`00` prefix are read in (docs/reference.md#phone-numbers).
    pub default_region: DefaultRegion,
    /// Each company's field definitions.
    definitions: Arc<TtlCache<Uuid, Arc<Vec<FieldDefinition>>>>,
}

impl Directory {
    /// The directory of `store`, its cache empty.
    pub fn new(store: Arc<dyn Store>, default_region: DefaultRegion) -> Self {
        Self {
            store,
            default_region,
            definitions: Arc::default(),
        }
    }

    /// The company's field definitions, read from the store when the cached ones are stale.
    pub async fn field_definitions(
        &self,
        company_id: Uuid,
    ) -> Result<Arc<Vec<FieldDefinition>>, StoreError> {
        self.definitions
            .get_or_fetch(company_id, async {
                Ok(Arc::new(self.store.list_fields(company_id).await?))
            })
            .await
    }

    /// Forgets the company's cached definitions, after a change made through this process.
    pub fn definitions_changed(&self, company_id: Uuid) {
        self.definitions.remove(&company_id);
    }
}
