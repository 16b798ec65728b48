//! The servants: Manager, Session (one default servant for every session), the subscriber of
//! the query topic, and the callback objects of pending queries (one default servant).

use std::sync::Arc;

use floe::Error;
use floe::codegen::Current;
use tracing::{debug, info, warn};

use std::net::IpAddr;

use crate::core::{Answer, Core, Ownership, Query};
use crate::limits::{Escaped, check_password, check_user_name};
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

/// The client's address of a request, for the login throttle.
fn client_address(current: &Current) -> Option<IpAddr> {
    current.con.as_ref().map(|c| c.remote_address().ip())
}

/// The `Manager` servant.
#[derive(Debug)]
pub struct ManagerI(pub Arc<Core>);

impl ManagerI {
    /// Checks the user name and password of a `login` or `createUser` before anything else.
    fn check_credentials(
        &self,
        op: &str,
        username: &str,
        password: &str,
    ) -> Result<(), Unauthorized> {
        let checked = check_user_name(username).and_then(|()| check_password(password));
        checked.map_err(|reason| {
            info!(target: "usersmanager::manager", user = %Escaped(username), "{op} refused: {reason}");
            unauthorized(&reason)
        })
    }
}

impl um::Manager for ManagerI {
    async fn login(
        &self,
        username: String,
        password: String,
        current: &Current,
    ) -> Result<Option<SessionPrx>, manager::LoginError> {
        let core = &self.0;
        self.check_credentials("login", &username, &password)?;
        let address = client_address(current);
        if let Err(reason) = core.throttle.check(&username, address) {
            debug!(target: "usersmanager::manager", user = %Escaped(&username), "login refused: {reason}");
            return Err(unauthorized(&reason).into());
        }
        if let Some(record) = core.user(&username).map_err(Error::from)? {
            return if core
                .password_matches(&record, &password)
                .await
                .map_err(Error::from)?
            {
                let session = core.open_session(&username, &record);
                info!(target: "usersmanager::manager", user = %Escaped(&username), "login: local user, session opened");
                Ok(Some(session))
            } else {
                core.throttle.failed(&username, address);
                info!(target: "usersmanager::manager", user = %Escaped(&username), "login refused: wrong password");
                Err(unauthorized(WRONG_CREDENTIALS).into())
            };
        }
        info!(target: "usersmanager::manager", user = %Escaped(&username), "login: unknown here, asking the other instances");
        let answer = core
            .ask(Query::Login {
                username: username.clone(),
                password,
            })
            .await?;
        match answer {
            Some(Answer::Session(Some(session))) => {
                info!(target: "usersmanager::manager", session = %Escaped(&session.to_string()), "login: session opened by another instance");
                Ok(Some(session))
            }
            _ => {
                core.throttle.failed(&username, address);
                info!(target: "usersmanager::manager", user = %Escaped(&username), "login refused: no instance answered");
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
        self.check_credentials("createUser", &username, &password)?;
        if !core.begin_creation(&username).map_err(Error::from)? {
            info!(target: "usersmanager::manager", user = %Escaped(&username), "createUser refused: name known here");
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
        let shown = session.to_string();
        match core.ownership(&session) {
            Ownership::Mine(entry) => {
                if !entry.alive() {
                    info!(target: "usersmanager::manager", session = %Escaped(&shown), user = %Escaped(&entry.user), "removeUser refused: session expired");
                    return Err(SessionExpired {}.into());
                }
                let removed = core
                    .remove_user(&entry.user, &entry.user_id)
                    .await
                    .map_err(Error::from)?;
                if removed {
                    info!(target: "usersmanager::manager", user = %Escaped(&entry.user), "removeUser: user removed");
                    return Ok(());
                }
                info!(target: "usersmanager::manager", user = %Escaped(&entry.user), "removeUser refused: user no longer exists");
                return Err(InvalidUser { user: entry.user }.into());
            }
            Ownership::Forged => {
                info!(target: "usersmanager::manager", session = %Escaped(&shown), "removeUser refused: forged session proxy");
            }
            Ownership::NotMine => {
                info!(target: "usersmanager::manager", session = %Escaped(&shown), "removeUser: not my session, asking the other instances");
                let answer = core.ask(Query::RemoveUserBySession { session }).await?;
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
        let shown = session.to_string();
        match core.ownership(&session) {
            Ownership::Mine(_) => {
                info!(target: "usersmanager::manager", session = %Escaped(&shown), "verifySession: my session, verified");
                Ok(true)
            }
            Ownership::Forged => {
                info!(target: "usersmanager::manager", session = %Escaped(&shown), "verifySession: forged proxy, not verified");
                Ok(false)
            }
            Ownership::NotMine => {
                info!(target: "usersmanager::manager", session = %Escaped(&shown), "verifySession: asking the other instances");
                let answer = core.ask(Query::CheckSession { session }).await?;
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
        // Every subscriber seen lately must hear the query, or it could hold the name unheard.
        let before = match core.cluster_members().await? {
            Ok(members) => members,
            Err(reason) => {
                info!(target: "usersmanager::manager", user = %Escaped(username), "createUser refused: {reason}");
                return Err(unauthorized(&reason).into());
            }
        };
        // Hash while the other instances are asked: both take time.
        let hashing = tokio::spawn({
            let core = core.clone();
            async move { core.hash_password(password).await }
        });
        let answer = core
            .ask(Query::CheckUsername {
                username: username.to_string(),
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
            info!(target: "usersmanager::manager", user = %Escaped(username), "createUser refused: another instance knows the name");
            return Err(unauthorized(NAME_TAKEN).into());
        }
        // And none of them may have left meanwhile.
        let after = core.cluster_members().await?;
        let left = match &after {
            Ok(members) => before.difference(members).count(),
            Err(_) => 1,
        };
        if left > 0 {
            hashing.abort();
            let reason = after.err().unwrap_or_else(|| {
                format!("the cluster is incomplete: {left} subscriber(s) left the query topic during the check; try again later")
            });
            info!(target: "usersmanager::manager", user = %Escaped(username), "createUser refused: {reason}");
            return Err(unauthorized(&reason).into());
        }
        let phc = hashing
            .await
            .map_err(|e| Error::UnknownException(format!("password hashing: {e}")))?
            .map_err(Error::from)?;
        match core.store_user(username, phc).await.map_err(Error::from)? {
            Some(record) => {
                let session = core.open_session(username, &record);
                info!(target: "usersmanager::manager", user = %Escaped(username), "createUser: user stored, session opened");
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
        debug!(target: "usersmanager::session", session = %Escaped(&current.id.name), user = %Escaped(&entry.user), "getUser");
        Ok(entry.user)
    }

    async fn is_alive(&self, current: &Current) -> Result<bool, Error> {
        let entry = self
            .0
            .session(&current.id.name)
            .ok_or_else(object_not_exist)?;
        let alive = entry.alive();
        debug!(target: "usersmanager::session", session = %Escaped(&current.id.name), alive, "isAlive");
        Ok(alive)
    }

    async fn refresh(&self, current: &Current) -> Result<(), session::RefreshError> {
        let core = &self.0;
        let id = &current.id.name;
        let entry = match core.extend_session(id) {
            None => return Err(object_not_exist().into()),
            Some(Err(expired)) => {
                info!(target: "usersmanager::session", session = %Escaped(id), "refresh refused: session expired");
                return Err(expired.into());
            }
            Some(Ok(entry)) => entry,
        };
        let exists = core
            .user(&entry.user)
            .map_err(Error::from)?
            .is_some_and(|r| r.id == entry.user_id);
        if !exists {
            info!(target: "usersmanager::session", session = %Escaped(id), user = %Escaped(&entry.user), "refresh refused: user no longer exists");
            return Err(InvalidUser { user: entry.user }.into());
        }
        debug!(target: "usersmanager::session", session = %Escaped(id), "refresh: extended");
        Ok(())
    }
}

/// The object subscribed to the query topic: answers the queries this instance can answer.
///
/// With a cluster key, a query must be signed, fresh and new (see [`crate::auth`]); any other is
/// refused with an exception, so a call that does not come from an instance through the topic
/// is answered with nothing but the refusal, and no callback an outsider names is ever called.
#[derive(Debug)]
pub struct ManagerQueryI(pub Arc<Core>);

impl ManagerQueryI {
    /// The callback to answer through, or `None` when the query is this instance's own or has
    /// no callback.
    fn callback(
        &self,
        cb: Option<&ManagerQueryResponsePrx>,
        op: &str,
    ) -> Option<ManagerQueryResponsePrx> {
        let cb = cb?;
        if self.0.is_own_callback(cb) {
            debug!(target: "usersmanager::query", op, "own query, ignored");
            return None;
        }
        Some(ManagerQueryResponsePrx::unchecked_cast(
            cb.ice_invocation_timeout(
                i32::try_from(self.0.config.query_timeout.as_millis()).unwrap_or(i32::MAX),
            ),
        ))
    }

    /// Checks a query's signature (with a cluster key) over `fields`, and returns the callback
    /// to answer through with the query's nonce; `Ok(None)` when there is nothing to answer.
    fn accept(
        &self,
        current: &Current,
        fields: &[&str],
        cb: Option<&ManagerQueryResponsePrx>,
    ) -> Result<Option<(ManagerQueryResponsePrx, Option<String>)>, Error> {
        let nonce = self.0.authenticate_query(current, fields).map_err(|why| {
            self.0.refused(&current.operation, &why);
            Error::UnknownException(format!("query refused: {why}"))
        })?;
        Ok(self.callback(cb, &current.operation).map(|cb| (cb, nonce)))
    }

    /// Sends the answer `operation` through `cb` (signed with a cluster key).
    async fn answer(
        &self,
        cb: &ManagerQueryResponsePrx,
        operation: &str,
        session: Option<SessionPrx>,
    ) {
        let shown = session.as_ref().map(|s| s.to_string());
        let cb = self.0.answer_through(cb, operation, shown.as_deref());
        let result = match operation {
            "sendSession" => cb.send_session(session).await,
            "userExists" => cb.user_exists().await,
            "userRemoved" => cb.user_removed().await,
            _ => cb.session_verified().await,
        };
        // The query itself succeeded: the asking instance may be gone or have timed out.
        if let Err(e) = result {
            warn!(target: "usersmanager::query", op = operation, error = %Escaped(&e.to_string()), "could not deliver the answer");
        }
    }
}

/// A proxy as a string, or "" for a null one: what a signature covers.
fn text<T: std::ops::Deref<Target = floe::ObjectPrx>>(prx: Option<&T>) -> String {
    prx.map(|p| p.to_string()).unwrap_or_default()
}

impl um::ManagerQuery for ManagerQueryI {
    async fn login(
        &self,
        username: String,
        password: String,
        response_rcvr: Option<ManagerQueryResponsePrx>,
        current: &Current,
    ) -> Result<(), Error> {
        let cb_text = text(response_rcvr.as_ref());
        let Some((cb, nonce)) = self.accept(
            current,
            &[&username, &password, &cb_text],
            response_rcvr.as_ref(),
        )?
        else {
            return Ok(());
        };
        let core = &self.0;
        let password = match (&core.key, nonce) {
            (Some(key), Some(nonce)) => match key.open(&nonce, &password) {
                Some(p) => p,
                None => return Ok(()),
            },
            _ => password,
        };
        if check_user_name(&username).is_err() || check_password(&password).is_err() {
            debug!(target: "usersmanager::query", user = %Escaped(&username), "login query: invalid user name or password, ignored");
            return Ok(());
        }
        // The address is the broker's: only the user name is throttled here.
        if core.throttle.check(&username, None).is_err() {
            debug!(target: "usersmanager::query", user = %Escaped(&username), "login query: throttled, ignored");
            return Ok(());
        }
        let Some(record) = core.user(&username)? else {
            debug!(target: "usersmanager::query", user = %Escaped(&username), "login query: not mine, ignored");
            return Ok(());
        };
        if !core.password_matches(&record, &password).await? {
            core.throttle.failed(&username, None);
            debug!(target: "usersmanager::query", user = %Escaped(&username), "login query: wrong password, ignored");
            return Ok(());
        }
        let session = core.open_session(&username, &record);
        info!(target: "usersmanager::query", user = %Escaped(&username), "login query: session opened, answering");
        self.answer(&cb, "sendSession", Some(session)).await;
        Ok(())
    }

    async fn check_username(
        &self,
        username: String,
        response_rcvr: Option<ManagerQueryResponsePrx>,
        current: &Current,
    ) -> Result<(), Error> {
        let cb_text = text(response_rcvr.as_ref());
        let Some((cb, _)) = self.accept(current, &[&username, &cb_text], response_rcvr.as_ref())?
        else {
            return Ok(());
        };
        if check_user_name(&username).is_ok() && self.0.knows_name(&username)? {
            info!(target: "usersmanager::query", user = %Escaped(&username), "checkUsername query: name known here, answering");
            self.answer(&cb, "userExists", None).await;
        } else {
            debug!(target: "usersmanager::query", user = %Escaped(&username), "checkUsername query: unknown name, ignored");
        }
        Ok(())
    }

    async fn remove_user_by_session(
        &self,
        active_session: Option<SessionPrx>,
        response_rcvr: Option<ManagerQueryResponsePrx>,
        current: &Current,
    ) -> Result<(), Error> {
        let fields = [text(active_session.as_ref()), text(response_rcvr.as_ref())];
        let Some((cb, _)) =
            self.accept(current, &[&fields[0], &fields[1]], response_rcvr.as_ref())?
        else {
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
            info!(target: "usersmanager::query", session = %Escaped(&fields[0]), "removeUserBySession query: session expired, ignored");
            return Ok(());
        }
        if core.remove_user(&entry.user, &entry.user_id).await? {
            info!(target: "usersmanager::query", user = %Escaped(&entry.user), "removeUserBySession query: user removed, answering");
            self.answer(&cb, "userRemoved", None).await;
        } else {
            info!(target: "usersmanager::query", user = %Escaped(&entry.user), "removeUserBySession query: user no longer exists, ignored");
        }
        Ok(())
    }

    async fn check_session(
        &self,
        session: Option<SessionPrx>,
        response_rcvr: Option<ManagerQueryResponsePrx>,
        current: &Current,
    ) -> Result<(), Error> {
        let fields = [text(session.as_ref()), text(response_rcvr.as_ref())];
        let Some((cb, _)) =
            self.accept(current, &[&fields[0], &fields[1]], response_rcvr.as_ref())?
        else {
            return Ok(());
        };
        let Some(session) = session else {
            return Ok(());
        };
        if let Ownership::Mine(_) = self.0.ownership(&session) {
            info!(target: "usersmanager::query", session = %Escaped(&fields[0]), "checkSession query: my session, answering");
            self.answer(&cb, "sessionVerified", None).await;
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
    fn deliver(
        &self,
        current: &Current,
        answer: Answer,
        session: Option<&str>,
    ) -> Result<(), Error> {
        let op = &current.operation;
        if let Err(why) = self.0.authenticate_answer(current, session) {
            self.0.refused(op, &why);
            return Err(Error::UnknownException(format!("answer refused: {why}")));
        }
        if self.0.deliver(&current.id.name, answer) {
            info!(target: "usersmanager::response", op = %op, query = %Escaped(&current.id.name), "answer received");
            Ok(())
        } else {
            debug!(target: "usersmanager::response", op = %op, query = %Escaped(&current.id.name), "answer to no pending query of that kind");
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
        let shown = text(session.as_ref());
        self.deliver(current, Answer::Session(session), Some(&shown))
    }

    async fn user_exists(&self, current: &Current) -> Result<(), Error> {
        self.deliver(current, Answer::UserExists, None)
    }

    async fn user_removed(&self, current: &Current) -> Result<(), Error> {
        self.deliver(current, Answer::UserRemoved, None)
    }

    async fn session_verified(&self, current: &Current) -> Result<(), Error> {
        self.deliver(current, Answer::SessionVerified, None)
    }
}
