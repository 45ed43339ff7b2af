#!/bin/sh
# share_variables.sh IN.s OUT.s globl|weak KEEP SYMBOL...
#
# One copy of the NF, compiled to assembly, with the NF variables SYMBOL
# (their ELF names; "next.0", a block-scope static, matches any numeric
# suffix) renamed maestro_shared_<name> and bound globl (the copy that
# defines them) or weak (the others), so that the linker makes every copy
# use one instance.  KEEP receives the renamed symbols, for objcopy.
# Fails, naming the variable, when one is not in the assembly: a copy that
# silently kept its own instance would be a wrong program.
set -eu
in=$1 out=$2 bind=$3 keep=$4
shift 4
patterns=""
for symbol in "$@"; do
  base=$symbol
  case $symbol in
    *.[0-9]*) base=${symbol%.*} ;;
  esac
  quoted=$(printf '%s' "$base" | sed 's/[.$]/\\&/g')
  case $symbol in
    *.[0-9]*) quoted="$quoted\\.[0-9]+" ;;
  esac
  patterns="${patterns:+$patterns|}$quoted"
done
PATTERNS=$patterns perl -pe 's/(?<![A-Za-z0-9_.\$])($ENV{PATTERNS})(?![A-Za-z0-9_\$])/maestro_shared_$1/g' "$in" > "$out"
grep -oE '^maestro_shared_[A-Za-z0-9_.$]+:' "$out" | tr -d : | sort -u > "$keep"
for symbol in "$@"; do
  base=$symbol
  case $symbol in
    *.[0-9]*) base=${symbol%.*} ;;
  esac
  if ! grep -q "^maestro_shared_$base" "$keep"; then
    echo "maestro: the NF variable $symbol is not defined in $in: cannot share it" >&2
    exit 1
  fi
done
while read -r symbol; do
  printf '\t.%s %s\n' "$bind" "$symbol" >> "$out"
done < "$keep"
