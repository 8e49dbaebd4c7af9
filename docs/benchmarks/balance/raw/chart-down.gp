set terminal pngcairo size 1100,820 font "sans,10"
set output "../down.png"
set datafile separator "\t"
set datafile missing ""
set key outside right top
set grid
set xrange [0:50]
set multiplot layout 2,1
set title "(b) member down, then back - imbalance (max/mean requests over usable members, 5 s window; first repetition)\nkill m2 at 15s; start m2 at 25s"
set ylabel "imbalance"
set xlabel "seconds"
set yrange [1:*]
set arrow from 15, graph 0 to 15, graph 1 nohead dt 2 lc rgb "#888888"
set arrow from 25, graph 0 to 25, graph 1 nohead dt 2 lc rgb "#888888"
plot 1.200000 title "target 1.2" with lines dt 3 lc rgb "black", "down-stock-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#000000" title "stock", "down-haproxy-rr-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#1f78b4" dt 2 title "haproxy-rr", "down-haproxy-lc-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#33a02c" dt 2 title "haproxy-lc", "down-sticky-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#e31a1c" title "sticky", "down-sticky-leastbusy-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#ff7f00" title "sticky-leastbusy", "down-sticky-lifetimes-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#6a3d9a" title "sticky-lifetimes", "down-sticky-leastbusy-lifetimes-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#b15928" title "sticky-leastbusy-lifetimes", "down-sticky-full-r1.tsv" using "t":"imb5" with lines lw 2 lc rgb "#e7298a" title "sticky-full"
unset arrow
set title "returning member: share of new sessions (5 s window) vs the slow-start ramp\n(contenders with slow start: every repetition; the others: the first)"
set ylabel "share of new sessions"
set yrange [0:1]
plot "return-stock-r1.tsv" using "t":"new_share" with lines lw 2 lc rgb "#000000" title "stock", "return-haproxy-rr-r1.tsv" using "t":"new_share" with lines lw 2 lc rgb "#1f78b4" dt 2 title "haproxy-rr", "return-haproxy-lc-r1.tsv" using "t":"new_share" with lines lw 2 lc rgb "#33a02c" dt 2 title "haproxy-lc", "return-sticky-r1.tsv" using "t":"new_share" with lines lw 2 lc rgb "#e31a1c" title "sticky", "return-sticky-leastbusy-r1.tsv" using "t":"new_share" with lines lw 2 lc rgb "#ff7f00" title "sticky-leastbusy", "return-sticky-lifetimes-r1.tsv" using "t":"new_share" with lines lw 2 lc rgb "#6a3d9a" title "sticky-lifetimes", "return-sticky-leastbusy-lifetimes-r1.tsv" using "t":"new_share" with lines lw 2 lc rgb "#b15928" title "sticky-leastbusy-lifetimes", "return-sticky-full-r1.tsv" using "t":"ramp" with lines dt 1 lw 1 lc rgb "black" title "slow-start ramp of sticky-full r1 (10 s)", "return-sticky-full-r1.tsv" using "t":"new_share" with lines lw 2 lc rgb "#e7298a" dt 1 title "sticky-full r1", "return-sticky-full-r2.tsv" using "t":"ramp" with lines dt 2 lw 1 lc rgb "black" title "slow-start ramp of sticky-full r2 (10 s)", "return-sticky-full-r2.tsv" using "t":"new_share" with lines lw 2 lc rgb "#e7298a" dt 2 title "sticky-full r2", "return-sticky-full-r3.tsv" using "t":"ramp" with lines dt 3 lw 1 lc rgb "black" title "slow-start ramp of sticky-full r3 (10 s)", "return-sticky-full-r3.tsv" using "t":"new_share" with lines lw 2 lc rgb "#e7298a" dt 3 title "sticky-full r3"
unset multiplot
