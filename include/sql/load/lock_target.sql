-- Serialise writers of the target (AWS "LOCK"; "Managing concurrent write operations").
LOCK {{ target }};
