import re,sys
# Applies eddy's array-preallocation bound to a pristine kmsg v1.15.0
# generated.go (see EDDY.md): python3 eddy_patch.py path/to/generated.go
p=sys.argv[1] if len(sys.argv) > 1 else 'generated.go'
lines=open(p).read().split('\n')
out=[]
i=0
mk=re.compile(r'^(\s*)a = append\(a, make\(\[\](.+), l\)\.\.\.\)$')
edits=0
pending=None
for ln in lines:
    m=mk.match(ln)
    if m:
        ind,typ=m.group(1),m.group(2)
        out.append(f'{ind}a = append(a, make([]{typ}, min(l, preallocMax))...)')
        pending=typ
        edits+=1
        continue
    if pending is not None and ln.strip()=='for i := int32(0); i < l; i++ {':
        ind=ln[:len(ln)-len(ln.lstrip())]
        out.append(ln)
        out.append(f'{ind}\tif int(i) == len(a) {{')
        out.append(f'{ind}\t\tif !b.Ok() {{')
        out.append(f'{ind}\t\t\treturn b.Complete()')
        out.append(f'{ind}\t\t}}')
        out.append(f'{ind}\t\ta = append(a, *new({pending}))')
        out.append(f'{ind}\t}}')
        pending=None
        continue
    out.append(ln)
assert pending is None
open(p,'w').write('\n'.join(out))
print(edits)
