-- Counts every change to who a room's members are and what they are called (a join, a
-- leave, an account deleted or renamed), in the same transaction as the change. A member
-- list read together with it stays exact for as long as the count is unchanged, on any node.
ALTER TABLE rooms ADD COLUMN members_rev INTEGER NOT NULL DEFAULT 0;
