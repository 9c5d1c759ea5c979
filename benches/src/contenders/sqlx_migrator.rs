//! sqlx's `Migrator`, loading the workload as files (the load is untimed).

use crate::target::Target;
use crate::workload::Step;
use migrate::testing::Backend;
use sqlx::migrate::Migrator;
use sqlx::Connection;

pub enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
    MySql(sqlx::MySqlConnection),
}

pub struct SqlxMigrator {
    migrator: Migrator,
    conn: Conn,
    _dir: crate::TempDir,
}

impl SqlxMigrator {
    pub async fn open(target: &Target, steps: &[Step]) -> SqlxMigrator {
        let dir = crate::TempDir::new("sqlx");
        for step in steps {
            std::fs::write(
                dir.path()
                    .join(format!("{:05}_m{}.sql", step.index, step.index)),
                &step.sql,
            )
            .expect("write migration file");
        }
        let migrator = Migrator::new(dir.path()).await.expect("load migrations");
        let url = &target.url;
        let conn = match target.backend {
            Backend::Sqlite => Conn::Sqlite(crate::sqlite_connection(url).await),
            Backend::Postgres => {
                Conn::Postgres(sqlx::PgConnection::connect(url).await.expect("connect"))
            }
            Backend::MySql => {
                Conn::MySql(sqlx::MySqlConnection::connect(url).await.expect("connect"))
            }
        };
        SqlxMigrator {
            migrator,
            conn,
            _dir: dir,
        }
    }

    pub async fn run(&mut self) {
        match &mut self.conn {
            Conn::Sqlite(c) => self.migrator.run(c).await,
            Conn::Postgres(c) => self.migrator.run(c).await,
            Conn::MySql(c) => self.migrator.run(c).await,
        }
        .expect("sqlx migrator");
    }
}
