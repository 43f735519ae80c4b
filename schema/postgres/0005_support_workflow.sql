-- Support workflow: conversation status and assignment, private notes, and workflow events in the timeline.
--
-- Agents and customers see different sequence numbers. `seq` numbers every row of a conversation (messages, notes
-- and status or assignment events) and is what agents see; `customer_seq` numbers only what the customer may see
-- (kind 'message'), so that a note never shows as a gap in the customer's numbering. Before this migration every
-- row was a message, so both numbers are equal.
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message' CHECK (kind IN ('message', 'note', 'status', 'assignment'));
ALTER TABLE messages ADD COLUMN customer_seq BIGINT;
UPDATE messages SET customer_seq = seq;
CREATE UNIQUE INDEX messages_by_customer_seq ON messages(conversation_id, customer_seq) WHERE customer_seq IS NOT NULL;
-- A status event: the status set and, for a snooze, until when (NULL: until the customer writes).
ALTER TABLE messages ADD COLUMN event_status TEXT CHECK (event_status IN ('open', 'snoozed', 'resolved'));
ALTER TABLE messages ADD COLUMN event_until BIGINT;
-- An assignment event: the agent assigned, NULL when the conversation was unassigned.
ALTER TABLE messages ADD COLUMN event_assignee TEXT;

-- A conversation's current status and assignee, changed in the same transaction as the event that sets them.
-- A customer's message reopens a resolved or snoozed conversation without writing here: the status holds only
-- while customer_messages = status_customer_messages (the count when it was set), and a snooze only until
-- snoozed_until. Readers apply both rules, so the message write path does no extra work.
ALTER TABLE conversations ADD COLUMN customer_last_seq BIGINT NOT NULL DEFAULT 0;
UPDATE conversations SET customer_last_seq = last_seq;
ALTER TABLE conversations ADD COLUMN status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'snoozed', 'resolved'));
ALTER TABLE conversations ADD COLUMN snoozed_until BIGINT;
ALTER TABLE conversations ADD COLUMN status_customer_messages BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN assignee TEXT;
