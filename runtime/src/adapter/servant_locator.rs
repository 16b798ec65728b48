//! Servant locators, as Ice's `ServantLocator`: servants found (or made) per request for the
//! identities an object adapter has no servant for.
//!
//! For a request, the adapter looks in its servant map, then at its default servants; when
//! neither has a servant it asks the locator registered for the identity's category (or, when
//! there is none, the one registered for `""`). `locate` returns the servant and a cookie, or
//! `None` (the client gets ObjectNotExist); once the servant's dispatch is over, `finished`
//! gets the servant and the cookie back. Both may fail with a user exception or a runtime
//! error: that becomes the reply (an error from `finished` replaces the dispatch's outcome).
//! Destroying the adapter calls `deactivate` on each locator still registered.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::dispatch::{Current, Dispatcher};
use crate::encoding::DispatchError;

/// What `locate` passes on to `finished` along with the servant.
pub type Cookie = Option<Box<dyn Any + Send + Sync>>;

/// A servant located for one request.
pub struct Located {
    /// The servant that dispatches the request.
    pub servant: Arc<dyn Dispatcher>,
    /// Handed back to [`ServantLocator::finished`].
    pub cookie: Cookie,
}

impl Located {
    /// A located servant without a cookie.
    pub fn new(servant: Arc<dyn Dispatcher>) -> Located {
        Located {
            servant,
            cookie: None,
        }
    }

    /// A located servant with a cookie.
    pub fn with_cookie(servant: Arc<dyn Dispatcher>, cookie: impl Any + Send + Sync) -> Located {
        Located {
            servant,
            cookie: Some(Box::new(cookie)),
        }
    }
}

impl fmt::Debug for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Located")
            .field("cookie", &self.cookie.is_some())
            .finish_non_exhaustive()
    }
}

/// Finds servants per request for an object adapter
/// ([`crate::ObjectAdapter::add_servant_locator`]).
pub trait ServantLocator: Send + Sync + 'static {
    /// Returns the servant for `current` (its identity, facet and operation), or `None` when
    /// there is no such object.
    fn locate<'a>(
        &'a self,
        current: &'a Current,
    ) -> BoxFuture<'a, Result<Option<Located>, DispatchError>>;

    /// Called after the located servant dispatched the request (successfully or not).
    fn finished<'a>(
        &'a self,
        current: &'a Current,
        servant: Arc<dyn Dispatcher>,
        cookie: Cookie,
    ) -> BoxFuture<'a, Result<(), DispatchError>>;

    /// Called once when the adapter is destroyed, with the category the locator was
    /// registered for.
    fn deactivate(&self, category: &str);
}
