//! `column IN (ids)` as one statement whatever the number of ids, so that it is prepared
//! once per connection and then taken from diesel's statement cache.
//!
//! diesel's `eq_any` writes one placeholder per value on SQLite, which makes every call a
//! new statement to parse and plan (diesel does not cache it); `GET /api/rooms/` asks two
//! such questions per request. Here the whole list is one bound value: a JSON array read
//! by `json_each` on SQLite, an array compared with `= ANY` on PostgreSQL.

use super::MultiBackend;
use diesel::expression::{AppearsOnTable, Expression, ValidGrouping, is_aggregate};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Text};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, SelectableExpression};

/// `column IN (ids)`; see the module's documentation.
#[derive(Debug, Clone, QueryId)]
pub(super) struct InIds<C> {
    column: C,
    ids: Vec<i64>,
    /// The same ids as a JSON array, for SQLite's `json_each`.
    json: String,
}

/// `column IN (ids)` for an integer `column`.
pub(super) fn in_ids<C>(column: C, ids: &[i64]) -> InIds<C> {
    let mut json = String::with_capacity(2 + ids.len() * 8);
    json.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&id.to_string());
    }
    json.push(']');
    InIds { column, ids: ids.to_vec(), json }
}

impl<C: Expression<SqlType = BigInt>> Expression for InIds<C> {
    type SqlType = Bool;
}

impl<C: AppearsOnTable<QS>, QS: ?Sized> AppearsOnTable<QS> for InIds<C> where Self: Expression {}

impl<C: SelectableExpression<QS>, QS: ?Sized> SelectableExpression<QS> for InIds<C> where
    Self: AppearsOnTable<QS>
{
}

impl<C> ValidGrouping<()> for InIds<C> {
    type IsAggregate = is_aggregate::No;
}

impl<C: QueryFragment<Sqlite>> QueryFragment<Sqlite> for InIds<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (SELECT value FROM json_each(");
        out.push_bind_param::<Text, _>(&self.json)?;
        out.push_sql("))");
        Ok(())
    }
}

impl<C: QueryFragment<Pg>> QueryFragment<Pg> for InIds<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" = ANY(");
        out.push_bind_param::<Array<BigInt>, _>(&self.ids)?;
        out.push_sql(")");
        Ok(())
    }
}

impl<C> QueryFragment<MultiBackend> for InIds<C>
where
    Self: QueryFragment<Pg> + QueryFragment<Sqlite>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        MultiBackend::walk_variant_ast(self, pass)
    }
}
