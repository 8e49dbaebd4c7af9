set terminal pngcairo size 1100,520 font "sans,10"
set output "../skew.png"
set datafile separator "\t"
set datafile missing ""
set key outside right top
set grid
set xrange [0:45]
set title "(c) skewed load - imbalance (max/mean requests over usable members, 5 s window; first repetition)\nheavy 8 at 15s"
set ylabel "imbalance"
set xlabel "seconds"
set yrange [1:*]
set arrow from 15, graph 0 to 15, graph 1 nohead dt 2 lc rgb "#888888"
plot 1.200000 title "target 1.2" with lines dt 3 lc rgb "black", "skew-stock-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#000000" title "stock", "skew-haproxy-rr-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#1f78b4" dt 2 title "haproxy-rr", "skew-haproxy-lc-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#33a02c" dt 2 title "haproxy-lc", "skew-sticky-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#e31a1c" title "sticky", "skew-sticky-leastbusy-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#ff7f00" title "sticky-leastbusy", "skew-sticky-lifetimes-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#6a3d9a" title "sticky-lifetimes", "skew-sticky-leastbusy-lifetimes-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#b15928" title "sticky-leastbusy-lifetimes", "skew-sticky-full-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#e7298a" title "sticky-full"
