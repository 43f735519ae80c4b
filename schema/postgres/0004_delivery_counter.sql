-- Batch numbers come from one counter row instead of max(batch_no) + 1: old batches are deleted, and with every
-- row gone the numbers started again at 1, below what the nodes had delivered, so they ignored the new batches.
-- Updating the row also orders commits the way the advisory lock did: the row stays locked until the commit, and
-- the next writer then reads the number it committed.
CREATE TABLE delivery_counter (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    batch_no BIGINT  NOT NULL
);
INSERT INTO delivery_counter (only_row, batch_no) SELECT true, COALESCE(max(batch_no), 0) FROM delivery_batches;
