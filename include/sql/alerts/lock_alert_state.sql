-- One health check at a time opens or closes incidents (AWS "LOCK").
LOCK {{ alerts }};
