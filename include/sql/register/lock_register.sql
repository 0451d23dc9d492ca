-- Serialise registrations and claims for the rest of the transaction (AWS "LOCK": exclusive).
LOCK {{ register }};
