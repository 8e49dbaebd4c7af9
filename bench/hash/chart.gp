# bench/hash/hash_bench.py's chart: balance (max/mean keys per member) and
# keys moved beyond the minimum on a removal and an addition, per contender.
#   gnuplot -e "tsv='results.tsv'; png='results.png'" bench/hash/chart.gp
set terminal pngcairo size 1000,420 font "sans,10" noenhanced
set output png
set datafile separator "\t"
set key autotitle columnhead top left
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set grid ytics
set multiplot layout 1,2 title "lbmethod=hash vs HAProxy and nginx consistent hashing (same keys, same members)"
set title "balance: max/mean keys per member (1 is perfect)"
set yrange [0.9:*]
plot tsv using 2:xtic(1) title "max/mean" lc rgb "#4477aa"
set title "keys moved beyond the minimum (%)"
set yrange [*:*]
plot tsv using 3:xtic(1) title "removal" lc rgb "#cc6677", \
     '' using 4 title "addition" lc rgb "#ddcc77"
unset multiplot
