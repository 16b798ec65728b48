//! The Rust code `slice2rs` generates for `slice/Interop.ice`, and a servant implementing it.

use std::sync::Arc;

use floe::codegen::{Current, Error, ValueRef};

floe::include_slice!("Interop");

use interop::{BaseError, Circle, Color, DetailError, Point, Shape, TesterPrx, tester};

/// The servant the Python client calls.
#[derive(Debug)]
pub struct TesterImpl;

impl interop::Tester for TesterImpl {
    async fn echo(&self, s: String, _current: &Current) -> Result<String, Error> {
        Ok(s)
    }

    async fn add(&self, a: i32, b: i32, _current: &Current) -> Result<i32, Error> {
        Ok(a.wrapping_add(b))
    }

    async fn mirror(
        &self,
        p: Vec<Point>,
        _current: &Current,
    ) -> Result<tester::MirrorResult, Error> {
        let mut counts = std::collections::HashMap::new();
        counts.insert("points".to_string(), p.len() as i32);
        let mut reversed = p;
        reversed.reverse();
        Ok(tester::MirrorResult {
            return_value: reversed,
            counts,
        })
    }

    async fn next(&self, c: Color, _current: &Current) -> Result<Color, Error> {
        Ok(match c {
            Color::Red => Color::Green,
            Color::Green => Color::Blue,
            Color::Blue => Color::Red,
        })
    }

    async fn maybe(&self, s: Option<String>, _current: &Current) -> Result<Option<i32>, Error> {
        Ok(s.map(|s| s.len() as i32))
    }

    async fn fail(&self, code: i32, _current: &Current) -> Result<(), tester::FailError> {
        if code == 0 {
            Err(BaseError {
                reason: "base".into(),
            }
            .into())
        } else {
            Err(DetailError {
                reason: "detail".into(),
                code,
            }
            .into())
        }
    }

    async fn grow(
        &self,
        s: Option<ValueRef>,
        _current: &Current,
    ) -> Result<Option<ValueRef>, Error> {
        let Some(s) = s else { return Ok(None) };
        if let Some(c) = s.read_as::<Circle>() {
            return Ok(Some(ValueRef::new(Circle {
                name: format!("{}+", c.name),
                radius: c.radius * 2.0,
            })));
        }
        if let Some(shape) = s.read_as::<Shape>() {
            return Ok(Some(ValueRef::new(Shape {
                name: format!("{}+", shape.name),
            })));
        }
        Err(Error::marshal("grow: not a shape"))
    }

    async fn self_(&self, current: &Current) -> Result<Option<TesterPrx>, Error> {
        Ok(Some(TesterPrx::unchecked_cast(
            current.adapter.create_proxy(current.id.clone()),
        )))
    }

    async fn shutdown(&self, current: &Current) -> Result<(), Error> {
        current.adapter.communicator().shutdown();
        Ok(())
    }
}

/// The dispatcher generated for `Tester`, around [`TesterImpl`].
pub fn dispatcher() -> Arc<interop::TesterDispatcher<TesterImpl>> {
    Arc::new(interop::TesterDispatcher(Arc::new(TesterImpl)))
}
