//! The servants: Manager, Session (one default servant for every session), the subscriber of
//! the query topic, and the callback objects of pending queries (one default servant).

use std::sync::Arc;

use floe::Error;
use floe::codegen::Current;
use tracing::{debug, info, warn};

use crate::core::{Answer, Core, Ownership, QueryKind};
use crate::slice::users_manager::{
    self as um, InvalidUser, ManagerQueryResponsePrx, SessionExpired, SessionPrx, Unauthorized,
    manager, session,
};

const WRONG_CREDENTIALS: &str = "wrong user name or password";
const NAME_TAKEN: &str = "the user name is taken";

fn unauthorized(reason: &str) -> Unauthorized {
    Unauthorized {
        reason: reason.to_string(),
    }
}

/// InvalidUser for a session whose user nobody can name (null, forged or unknown session).
fn user_unknown() -> InvalidUser {
    InvalidUser {
        user: String::new(),
    }
}

fn object_not_exist() -> Error {
    Error::ObjectNotExist(Box::default())
}

/// The `Manager` servant.
#[derive(Debug)]
pub struct ManagerI(pub Arc<Core>);

impl um::Manager for ManagerI {
    async fn login(
        &self,
        username: String,
        password: String,
        _current: &Current,
    ) -> Result<Option<SessionPrx>, manager::LoginError> {
        let core = &self.0;
        if let Some(record) = core.user(&username).map_err(Error::from)? {
            return if core
                .password_matches(&record, &password)
                .await
                .map_err(Error::from)?
            {
                let session = core.open_session(&username, &record);
                info!(target: "usersmanager::manager", user = %username, "login: local user, session opened");
                Ok(Some(session))
            } else {
                info!(target: "usersmanager::manager", user = %username, "login refused: wrong password");
                Err(unauthorized(WRONG_CREDENTIALS).into())
            };
        }
        info!(target: "usersmanager::manager", user = %username, "login: unknown here, asking the other instances");
        let answer = core
            .ask(QueryKind::Login, |publisher, cb| async move {
                publisher.login(&username, &password, Some(cb)).await
            })
            .await?;
        match answer {
            Some(Answer::Session(Some(session))) => {
                info!(target: "usersmanager::manager", session = %session.ice_get_identity(), "login: session opened by another instance");
                Ok(Some(session))
            }
            _ => {
                info!(target: "usersmanager::manager", "login refused: no instance answered");
                Err(unauthorized(WRONG_CREDENTIALS).into())
            }
        }
    }

    async fn create_user(
        &self,
        username: String,
        password: String,
        _current: &Current,
    ) -> Result<Option<SessionPrx>, manager::CreateUserError> {
        let core = &self.0;
        if username.is_empty() {
            info!(target: "usersmanager::manager", "createUser refused: empty user name");
            return Err(unauthorized("the user name is empty").into());
        }
        if !core.begin_creation(&username).map_err(Error::from)? {
            info!(target: "usersmanager::manager", user = %username, "createUser refused: name known here");
            return Err(unauthorized(NAME_TAKEN).into());
        }
        let result = self.create_unique(&username, password).await;
        core.end_creation(&username);
        result
    }

    async fn remove_user(
        &self,
        active_session: Option<SessionPrx>,
        _current: &Current,
    ) -> Result<(), manager::RemoveUserError> {
        let core = &self.0;
        let Some(session) = active_session else {
            info!(target: "usersmanager::manager", "removeUser refused: null session");
            return Err(user_unknown().into());
        };
        match core.ownership(&session) {
            Ownership::Mine(entry) => {
                if !entry.alive() {
                    info!(target: "usersmanager::manager", session = %session.ice_get_identity().name, user = %entry.user, "removeUser refused: session expired");
                    return Err(SessionExpired {}.into());
                }
                let removed = core
                    .remove_user(&entry.user, &entry.user_id)
                    .await
                    .map_err(Error::from)?;
                if removed {
                    info!(target: "usersmanager::manager", user = %entry.user, "removeUser: user removed");
                    return Ok(());
                }
                info!(target: "usersmanager::manager", user = %entry.user, "removeUser refused: user no longer exists");
                return Err(InvalidUser { user: entry.user }.into());
            }
            Ownership::Forged => {
                info!(target: "usersmanager::manager", session = %*session, "removeUser refused: forged session proxy");
            }
            Ownership::NotMine => {
                info!(target: "usersmanager::manager", session = %session.ice_get_identity(), "removeUser: not my session, asking the other instances");
                let answer = core
                    .ask(QueryKind::RemoveUserBySession, |publisher, cb| async move {
                        publisher
                            .remove_user_by_session(Some(session), Some(cb))
                            .await
                    })
                    .await?;
                if matches!(answer, Some(Answer::UserRemoved)) {
                    info!(target: "usersmanager::manager", "removeUser: removed by another instance");
                    return Ok(());
                }
                info!(target: "usersmanager::manager", "removeUser refused: no instance answered");
            }
        }
        Err(user_unknown().into())
    }

    async fn verify_session(
        &self,
        session: Option<SessionPrx>,
        _current: &Current,
    ) -> Result<bool, Error> {
        let core = &self.0;
        let Some(session) = session else {
            info!(target: "usersmanager::manager", "verifySession: null proxy, not verified");
            return Ok(false);
        };
        match core.ownership(&session) {
            Ownership::Mine(_) => {
                info!(target: "usersmanager::manager", session = %session.ice_get_identity().name, "verifySession: my session, verified");
                Ok(true)
            }
            Ownership::Forged => {
                info!(target: "usersmanager::manager", session = %*session, "verifySession: forged proxy, not verified");
                Ok(false)
            }
            Ownership::NotMine => {
                info!(target: "usersmanager::manager", session = %session.ice_get_identity(), "verifySession: asking the other instances");
                let answer = core
                    .ask(QueryKind::CheckSession, |publisher, cb| async move {
                        publisher.check_session(Some(session), Some(cb)).await
                    })
                    .await?;
                let verified = matches!(answer, Some(Answer::SessionVerified));
                info!(target: "usersmanager::manager", verified, "verifySession: answered by the other instances");
                Ok(verified)
            }
        }
    }
}

impl ManagerI {
    async fn create_unique(
        &self,
        username: &str,
        password: String,
    ) -> Result<Option<SessionPrx>, manager::CreateUserError> {
        let core = self.0.clone();
        // Hash while the other instances are asked: both take time.
        let hashing = tokio::spawn({
            let core = core.clone();
            async move { core.hash_password(password).await }
        });
        let name = username.to_string();
        let answer = core
            .ask(QueryKind::CheckUsername, |publisher, cb| async move {
                publisher.check_username(&name, Some(cb)).await
            })
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                hashing.abort();
                return Err(e.into());
            }
        };
        if matches!(answer, Some(Answer::UserExists)) {
            hashing.abort();
            info!(target: "usersmanager::manager", user = %username, "createUser refused: another instance knows the name");
            return Err(unauthorized(NAME_TAKEN).into());
        }
        let phc = hashing
            .await
            .map_err(|e| Error::UnknownException(format!("password hashing: {e}")))?
            .map_err(Error::from)?;
        match core.store_user(username, phc).await.map_err(Error::from)? {
            Some(record) => {
                let session = core.open_session(username, &record);
                info!(target: "usersmanager::manager", user = %username, "createUser: user stored, session opened");
                Ok(Some(session))
            }
            None => Err(unauthorized(NAME_TAKEN).into()),
        }
    }
}

/// The default servant of category `session`: one object per open session.
#[derive(Debug)]
pub struct SessionI(pub Arc<Core>);

impl um::Session for SessionI {
    async fn get_user(&self, current: &Current) -> Result<String, Error> {
        let entry = self
            .0
            .session(&current.id.name)
            .ok_or_else(object_not_exist)?;
        debug!(target: "usersmanager::session", session = %current.id.name, user = %entry.user, "getUser");
        Ok(entry.user)
    }

    async fn is_alive(&self, current: &Current) -> Result<bool, Error> {
        let entry = self
            .0
            .session(&current.id.name)
            .ok_or_else(object_not_exist)?;
        let alive = entry.alive();
        debug!(target: "usersmanager::session", session = %current.id.name, alive, "isAlive");
        Ok(alive)
    }

    async fn refresh(&self, current: &Current) -> Result<(), session::RefreshError> {
        let core = &self.0;
        let id = &current.id.name;
        let entry = match core.extend_session(id) {
            None => return Err(object_not_exist().into()),
            Some(Err(expired)) => {
                info!(target: "usersmanager::session", session = %id, "refresh refused: session expired");
                return Err(expired.into());
            }
            Some(Ok(entry)) => entry,
        };
        let exists = core
            .user(&entry.user)
            .map_err(Error::from)?
            .is_some_and(|r| r.id == entry.user_id);
        if !exists {
            info!(target: "usersmanager::session", session = %id, user = %entry.user, "refresh refused: user no longer exists");
            return Err(InvalidUser { user: entry.user }.into());
        }
        debug!(target: "usersmanager::session", session = %id, "refresh: extended");
        Ok(())
    }
}

/// The object subscribed to the query topic: answers the queries this instance can answer.
#[derive(Debug)]
pub struct ManagerQueryI(pub Arc<Core>);

impl ManagerQueryI {
    /// The callback to answer through, or `None` when the query is this instance's own or has
    /// no callback.
    fn callback(
        &self,
        cb: Option<ManagerQueryResponsePrx>,
        op: &str,
    ) -> Option<ManagerQueryResponsePrx> {
        let cb = cb?;
        if self.0.is_own_callback(&cb) {
            debug!(target: "usersmanager::query", op, "own query, ignored");
            return None;
        }
        Some(ManagerQueryResponsePrx::unchecked_cast(
            cb.ice_invocation_timeout(
                i32::try_from(self.0.config.query_timeout.as_millis()).unwrap_or(i32::MAX),
            ),
        ))
    }
}

/// Logs an answer that could not be delivered (the asking instance is gone or timed out): the
/// query itself succeeded.
fn delivered(op: &str, result: Result<(), Error>) {
    if let Err(e) = result {
        warn!(target: "usersmanager::query", op, error = %e, "could not deliver the answer");
    }
}

impl um::ManagerQuery for ManagerQueryI {
    async fn login(
        &self,
        username: String,
        password: String,
        response_rcvr: Option<ManagerQueryResponsePrx>,
        _current: &Current,
    ) -> Result<(), Error> {
        let Some(cb) = self.callback(response_rcvr, "login") else {
            return Ok(());
        };
        let core = &self.0;
        match core.check_password(&username, &password).await? {
            Some(record) => {
                let session = core.open_session(&username, &record);
                info!(target: "usersmanager::query", user = %username, "login query: session opened, answering");
                delivered("sendSession", cb.send_session(Some(session)).await);
            }
            None => {
                debug!(target: "usersmanager::query", user = %username, "login query: not mine or wrong password, ignored");
            }
        }
        Ok(())
    }

    async fn check_username(
        &self,
        username: String,
        response_rcvr: Option<ManagerQueryResponsePrx>,
        _current: &Current,
    ) -> Result<(), Error> {
        let Some(cb) = self.callback(response_rcvr, "checkUsername") else {
            return Ok(());
        };
        if self.0.knows_name(&username)? {
            info!(target: "usersmanager::query", user = %username, "checkUsername query: name known here, answering");
            delivered("userExists", cb.user_exists().await);
        } else {
            debug!(target: "usersmanager::query", user = %username, "checkUsername query: unknown name, ignored");
        }
        Ok(())
    }

    async fn remove_user_by_session(
        &self,
        active_session: Option<SessionPrx>,
        response_rcvr: Option<ManagerQueryResponsePrx>,
        _current: &Current,
    ) -> Result<(), Error> {
        let Some(cb) = self.callback(response_rcvr, "removeUserBySession") else {
            return Ok(());
        };
        let Some(session) = active_session else {
            return Ok(());
        };
        let core = &self.0;
        let Ownership::Mine(entry) = core.ownership(&session) else {
            debug!(target: "usersmanager::query", "removeUserBySession query: not my session, ignored");
            return Ok(());
        };
        if !entry.alive() {
            info!(target: "usersmanager::query", session = %session.ice_get_identity().name, "removeUserBySession query: session expired, ignored");
            return Ok(());
        }
        if core.remove_user(&entry.user, &entry.user_id).await? {
            info!(target: "usersmanager::query", user = %entry.user, "removeUserBySession query: user removed, answering");
            delivered("userRemoved", cb.user_removed().await);
        } else {
            info!(target: "usersmanager::query", user = %entry.user, "removeUserBySession query: user no longer exists, ignored");
        }
        Ok(())
    }

    async fn check_session(
        &self,
        session: Option<SessionPrx>,
        response_rcvr: Option<ManagerQueryResponsePrx>,
        _current: &Current,
    ) -> Result<(), Error> {
        let Some(cb) = self.callback(response_rcvr, "checkSession") else {
            return Ok(());
        };
        let Some(session) = session else {
            return Ok(());
        };
        if let Ownership::Mine(_) = self.0.ownership(&session) {
            info!(target: "usersmanager::query", session = %session.ice_get_identity().name, "checkSession query: my session, answering");
            delivered("sessionVerified", cb.session_verified().await);
        } else {
            debug!(target: "usersmanager::query", "checkSession query: not my session, ignored");
        }
        Ok(())
    }
}

/// The default servant of category `response`: the callback objects of pending queries.
#[derive(Debug)]
pub struct ResponseI(pub Arc<Core>);

impl ResponseI {
    fn deliver(&self, current: &Current, answer: Answer) -> Result<(), Error> {
        let op = &current.operation;
        if self.0.deliver(&current.id.name, answer) {
            info!(target: "usersmanager::response", op = %op, query = %current.id.name, "answer received");
            Ok(())
        } else {
            debug!(target: "usersmanager::response", op = %op, query = %current.id.name, "answer to no pending query of that kind");
            Err(object_not_exist())
        }
    }
}

impl um::ManagerQueryResponse for ResponseI {
    async fn send_session(
        &self,
        session: Option<SessionPrx>,
        current: &Current,
    ) -> Result<(), Error> {
        self.deliver(current, Answer::Session(session))
    }

    async fn user_exists(&self, current: &Current) -> Result<(), Error> {
        self.deliver(current, Answer::UserExists)
    }

    async fn user_removed(&self, current: &Current) -> Result<(), Error> {
        self.deliver(current, Answer::UserRemoved)
    }

    async fn session_verified(&self, current: &Current) -> Result<(), Error> {
        self.deliver(current, Answer::SessionVerified)
    }
}
