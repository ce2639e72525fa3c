DROP FUNCTION webchat_append_batch(bigint[], text[], text[], bigint[], text[]);
