//! refinery, on its own drivers: rusqlite (WAL, synchronous = NORMAL) and tokio-postgres.

use crate::target::Target;
use crate::workload::Step;
use migrate::testing::Backend;
use refinery::{Migration, Runner};

pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

pub struct RefineryRunner {
    runner: Runner,
    conn: Conn,
}

impl RefineryRunner {
    pub async fn open(target: &Target, steps: &[Step]) -> RefineryRunner {
        let migrations: Vec<Migration> = steps
            .iter()
            .map(|s| {
                Migration::unapplied(&format!("V{}__m{}", s.index, s.index), &s.sql)
                    .expect("migration")
            })
            .collect();
        let runner = Runner::new(&migrations);
        let conn = match target.backend {
            Backend::Sqlite => {
                let conn = rusqlite::Connection::open(target.sqlite_path()).expect("open");
                conn.pragma_update(None, "journal_mode", "WAL")
                    .expect("wal");
                conn.pragma_update(None, "synchronous", "NORMAL")
                    .expect("synchronous");
                Conn::Sqlite(conn)
            }
            Backend::Postgres => {
                let (client, connection) =
                    tokio_postgres::connect(&target.url, tokio_postgres::NoTls)
                        .await
                        .expect("connect");
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Conn::Postgres(client)
            }
            Backend::MySql => unreachable!("refinery is not run on MySQL here"),
        };
        RefineryRunner { runner, conn }
    }

    pub async fn run(&mut self) {
        match &mut self.conn {
            Conn::Sqlite(c) => {
                self.runner.run(c).expect("refinery");
            }
            Conn::Postgres(c) => {
                self.runner.run_async(c).await.expect("refinery");
            }
        }
    }
}
