set terminal pngcairo size 1100,520 font "sans,10"
set output "../scaleout.png"
set datafile separator "\t"
set datafile missing ""
set key outside right top
set grid
set xrange [0:45]
set title "(a) scale-out - imbalance (max/mean requests over usable members, 5 s window; first repetition)\nenable m3,m4 at 15s"
set ylabel "imbalance"
set xlabel "seconds"
set yrange [1:*]
set arrow from 15, graph 0 to 15, graph 1 nohead dt 2 lc rgb "#888888"
plot 1.200000 title "target 1.2" with lines dt 3 lc rgb "black", "scaleout-stock-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#000000" title "stock", "scaleout-haproxy-rr-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#1f78b4" dt 2 title "haproxy-rr", "scaleout-haproxy-lc-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#33a02c" dt 2 title "haproxy-lc", "scaleout-sticky-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#e31a1c" title "sticky", "scaleout-sticky-leastbusy-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#ff7f00" title "sticky-leastbusy", "scaleout-sticky-lifetimes-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#6a3d9a" title "sticky-lifetimes", "scaleout-sticky-leastbusy-lifetimes-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#b15928" title "sticky-leastbusy-lifetimes", "scaleout-sticky-full-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#e7298a" title "sticky-full"
