"""Mixed ranking of ads and organic items by a Dueling DQN (Kuaishou): per request, where (if anywhere)
0–2 ads go among the organic slots, trained off-policy (Double DQN, replay, target net) on the logs of a
seeded exploring mixer, against fixed placement and the greedy per-slot value rule."""
