-- A desired row whose key is renamed (`UPDATE desired_subscribers SET key = ...`, e.g. the
-- CRM re-keys its records) keeps what the daemon knows about it under the new key: its merge
-- base (without it every field the row and Tariscope disagree on becomes a conflict), its
-- outbox entries (without them a create whose answer was lost would be sent again), its
-- conflicts, and the payments that name it by `subscriber_key`. `desired_dns` follows by its
-- foreign key. OR REPLACE: leftovers of an earlier row of the new key give way.
CREATE TRIGGER desired_key_renamed AFTER UPDATE OF key ON desired_subscribers
WHEN OLD.key IS NOT NEW.key
BEGIN
    UPDATE OR REPLACE merge_base SET key = NEW.key WHERE key = OLD.key;
    UPDATE OR REPLACE conflicts SET key = NEW.key WHERE key = OLD.key;
    UPDATE outbox SET key = NEW.key WHERE key = OLD.key AND op != 'payment';
    UPDATE desired_payments SET subscriber_key = NEW.key WHERE subscriber_key = OLD.key;
END;
