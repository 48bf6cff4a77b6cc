//! The source of truth: an embedded SQLite database of users, seeded at start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// One user as stored in SQLite, cached as JSON and returned by the HTTP API.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub name: String,
    /// Incremented by every PUT: lets clients (and tests) tell old data from new.
    pub version: u64,
}

/// The database, behind one mutex: each statement takes microseconds on an in-memory
/// database, less than a hop to another thread would.
pub struct Db {
    conn: Mutex<Connection>,
    reads: AtomicU64,
}

impl Db {
    /// An in-memory database with users `1..=users`, each at version 1.
    pub fn open(users: u64) -> rusqlite::Result<Db> {
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             version INTEGER NOT NULL)",
        )?;
        let tx = conn.transaction()?;
        {
            let mut insert =
                tx.prepare("INSERT INTO users (id, name, version) VALUES (?1, ?2, 1)")?;
            for id in 1..=users {
                insert.execute(params![id as i64, format!("user {id}")])?;
            }
        }
        tx.commit()?;
        Ok(Db {
            conn: Mutex::new(conn),
            reads: AtomicU64::new(0),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The user `id`, or `None`. Counted in [`reads`](Db::reads).
    pub fn get(&self, id: u64) -> rusqlite::Result<Option<User>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.conn()
            .query_row(
                "SELECT id, name, version FROM users WHERE id = ?1",
                params![id as i64],
                row_to_user,
            )
            .optional()
    }

    /// Set user `id`'s name (creating the user at version 1 if absent, else incrementing
    /// its version) and return the stored row.
    pub fn put_name(&self, id: u64, name: &str) -> rusqlite::Result<User> {
        self.conn().query_row(
            "INSERT INTO users (id, name, version) VALUES (?1, ?2, 1) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = version + 1 \
             RETURNING id, name, version",
            params![id as i64, name],
            row_to_user,
        )
    }

    /// Reads so far (the cache's loads and the bypasses).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

fn row_to_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get::<_, i64>(0)? as u64,
        name: r.get(1)?,
        version: r.get::<_, i64>(2)? as u64,
    })
}
