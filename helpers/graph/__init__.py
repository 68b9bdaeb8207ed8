"""Stage 02: the users-movies heterograph. `build` (GraphData, the time split, save/load), `features` (movie and user
node features), `explore` (degrees, walks, time lines)."""
