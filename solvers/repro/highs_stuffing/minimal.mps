NAME          stuffing
ROWS
 N  obj
 G  r
COLUMNS
    MARKER    'MARKER'                 'INTORG'
    x0        obj       61659          r         6
    x1        obj       5114           r         14
    x2        obj       2654           r         8
    MARKER    'MARKER'                 'INTEND'
    t         obj       10000          r         1
RHS
    rhs       r         23
BOUNDS
 BV bnd       x0
 BV bnd       x1
 BV bnd       x2
 PL bnd       t
ENDATA
