DROP TABLE settings;
DROP TABLE messages;
DROP TABLE memberships;
DROP TABLE rooms;
DROP TABLE sessions;
DROP TABLE users;
