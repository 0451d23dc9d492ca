DROP TABLE {{ staging }};
