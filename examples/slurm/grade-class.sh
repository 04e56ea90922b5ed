#!/bin/bash
# Grade a class on a Slurm cluster: N array tasks (grade-array.sbatch), then one `backprop merge`.
#
#   examples/slurm/grade-class.sh course/submitted tensor_edf 4
#
# Writes the merged outputs where one `backprop grade` would (<course>/grades/<A>/, or
# $MERGED), with nbgrader's gradebook.db, autograded/ and the class report. Stops with the
# merge's error when a task failed.
set -euo pipefail
SUBMITTED="$1"; ASSIGNMENT="$2"; N="${3:-4}"
COURSE="${COURSE:-course}"
OUT="${OUT:-grades-shards/$ASSIGNMENT}"
BACKPROP="${BACKPROP:-backprop}"
here="$(cd "$(dirname "$0")" && pwd)"
sbatch --wait --array="0-$((N - 1))" \
  --export="ALL,SUBMITTED=$SUBMITTED,ASSIGNMENT=$ASSIGNMENT,COURSE=$COURSE,OUT=$OUT,BACKPROP=$BACKPROP" \
  "$here/grade-array.sbatch" || echo "grade-class.sh: some array task failed; the merge will say which shard" >&2
shards=()
for k in $(seq 1 "$N"); do shards+=("$OUT/shard-$k-of-$N"); done
exec "$BACKPROP" merge "${shards[@]}" --course "$COURSE" --out "${MERGED:-$COURSE/grades/$ASSIGNMENT}"
