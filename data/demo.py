"""Demo province: the registry exports a provincial bureau would hand over (synthetic).

``generate`` writes, for one province of ``data/boundaries.gpkg`` (河南省 by default):

- ``设备台账.csv`` (UTF-8 with BOM, most equipment rows; ``坐标系`` per row: WGS84 ~80%,
  CGCS2000 8%, GCJ02 12%, BD09 2%), ``设备台账_县级导出.csv`` (GBK, every row of a few rural
  counties, ~8%, all BD-09, alias headers as county systems use) and ``设备台账_补录.xlsx``
  (5% of rows, at most 10,000: Excel date cells, two Excel serial numbers, text dates);
- ``使用单位.csv``, ``隐患.csv``, ``监督检查记录.csv``, ``网格员.csv`` (UTF-8);
- ``园区.geojson`` (GCJ-02, as digitised on AMap; ``坐标系`` on the collection and every
  feature) and ``人员密集场所.gpkg`` (layer ``venues``, EPSG:4490 CGCS2000);
- ``MANIFEST.json``: counts per file, the file row of every planted bad row and flag, seed.

Everything is drawn from one ``numpy.random.Generator`` and whole arrays at a time (the
few loops run over categories, kinds or templates, never over rows), so the same seed gives
byte-identical files and a million equipment rows take well under a minute.

Registration codes (设备注册代码): most are the 20-character 设备代码 = 4-character catalogue
variety code + 6-digit county adcode of the use place + 4-digit year (of commissioning) +
6-digit serial within (variety, county, year), e.g. ``31104101052015000012``. About 30% of
equipment commissioned before 2010 carries a legacy 12-character 注册代码 = the first two
characters of the variety code + the province and city digits of the adcode (4) + 2-digit
year + 4-digit serial, e.g. ``314101080123``. Unit credit codes follow GB 32100: '91'
(enterprise), '12' (public institution) or '11' (government) + county adcode + a GB 11714
organisation code with its own check digit + the GB 32100 check character. Hazard and
check numbers carry the province too (``YH41…``, ``JC41…``): no code or number of one
province's files is another's, so several provinces' files load as one batch.

Proportions (of equipment): 电梯 ~57% (3110 most, escalators mostly in malls, stations and
airports), 压力容器 15%, 起重机械 10.5%, 场车 7.5% (mostly 叉车), 锅炉 4%, 压力管道 4%, 气瓶
0.5%, 大型游乐设施 0.8% and 客运索道 0.05% (both inside 游乐场/景区 venues). ~3% of catalogue
names instead of codes (电梯, 曳引驱动乘客电梯). Parks (~0.65 per county) and venues (~6.4 per
county) scale with the province, not with the equipment count. Planted bad rows (~0.65% of
equipment, at least one of each kind) are listed in :data:`EQUIPMENT_BAD`.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
import xlsxwriter

from data.catalogue import load_catalogue, top_codes
from data.credit_code import ALPHABET, with_check_character
from data.reasons import Flag, Reason
from data.schema import SCHEMAS, Kind
from geo import cells
from geo.boundaries import load_boundaries, province_codes, representative_points
from geo.datum import Datum, transform_geometries, wgs84_to_bd09, wgs84_to_gcj02

AS_OF = date(2026, 11, 1)
S = np.dtypes.StringDType()
M_PER_DEG = 111_320.0

FILES = {
    "equipment": "设备台账.csv", "county": "设备台账_县级导出.csv", "xlsx": "设备台账_补录.xlsx",
    "units": "使用单位.csv", "hazards": "隐患.csv", "checks": "监督检查记录.csv",
    "parks": "园区.geojson", "venues": "人员密集场所.gpkg", "officers": "网格员.csv",
}

# ---------------------------------------------------------------- equipment mix
# group -> (share of equipment, {catalogue code: weight}); codes absent from the
# catalogue are dropped, and a group whose codes are all absent uses its top code.
GROUPS: dict[str, tuple[float, dict[str, float]]] = {
    "elevator": (0.575, {"3110": 0.80, "3120": 0.06, "3130": 0.004, "3210": 0.004,
                         "3220": 0.002, "3310": 0.085, "3320": 0.01, "3410": 0.002,
                         "3420": 0.02, "3430": 0.013}),
    "vessel": (0.15, {"2150": 0.42, "2170": 0.30, "2130": 0.15, "2110": 0.002, "2220": 0.05,
                      "2230": 0.01, "2240": 0.005, "2210": 0.003, "2250": 0.002, "2410": 0.01,
                      "2420": 0.002}),
    "cylinder": (0.005, {"2310": 0.6, "2320": 0.3, "23T0": 0.1}),
    "lifting": (0.105, {"4110": 0.20, "4170": 0.14, "4190": 0.10, "4210": 0.08, "4270": 0.06,
                        "4310": 0.10, "4410": 0.04, "4420": 0.01, "4860": 0.10, "4870": 0.02,
                        "4D00": 0.12, "4150": 0.01, "4130": 0.01, "4710": 0.005,
                        "4760": 0.005, "4440": 0.003}),
    "vehicle": (0.075, {"5110": 0.95, "5200": 0.05}),
    "boiler": (0.04, {"1100": 0.45, "1200": 0.50, "1310": 0.02, "1320": 0.03}),
    "piping": (0.04, {"8210": 0.45, "8220": 0.10, "8310": 0.30, "8320": 0.08, "8330": 0.02,
                      "8110": 0.02, "8120": 0.03}),
    "ride": (0.008, {"6100": 0.08, "6200": 0.12, "6300": 0.03, "6400": 0.08, "6500": 0.06,
                     "6600": 0.15, "6700": 0.12, "6800": 0.03, "6900": 0.06, "6A00": 0.10,
                     "6B00": 0.04, "6D20": 0.05, "6D10": 0.02, "6D40": 0.02, "6E10": 0.005,
                     "6E40": 0.01, "6E50": 0.005, "6E60": 0.005}),
    "ropeway": (0.0005, {"9110": 0.25, "9120": 0.45, "9210": 0.05, "9220": 0.05,
                         "9310": 0.15, "9320": 0.05}),
}
GROUP_MIN = {"ride": 4, "ropeway": 2, "cylinder": 3}
URBAN_GROUPS = {"elevator"}
# inspection cycle in months: (choices, probabilities) by group
CYCLES: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {
    "elevator": ((12,), (1.0,)), "boiler": ((12,), (1.0,)),
    "vessel": ((36, 48, 72), (0.5, 0.2, 0.3)), "cylinder": ((36, 48, 60), (0.4, 0.2, 0.4)),
    "lifting": ((24,), (1.0,)), "vehicle": ((12,), (1.0,)),
    "piping": ((36, 72), (0.6, 0.4)), "ride": ((12,), (1.0,)), "ropeway": ((12,), (1.0,)),
}
YEARLY_PREFIXES = ("22", "24", "43", "44", "48")  # mobile vessels, 氧舱, tower/mobile cranes

# which equipment stands in a crowded venue: group -> (probability, venue-kind weights)
VENUE_BOUND: dict[str, tuple[float, dict[str, float]]] = {
    "escalator": (0.7, {"商场": 6, "车站": 3, "机场": 3, "展览馆": 1, "影剧院": 0.5,
                        "医院": 1}),
    "elevator": (0.12, {"医院": 4, "商场": 3, "宾馆酒店": 2.5, "学校": 1, "养老机构": 0.6,
                        "车站": 1, "体育场馆": 0.5, "展览馆": 0.5, "影剧院": 0.3, "机场": 1}),
    "boiler": (0.15, {"医院": 3, "学校": 2, "宾馆酒店": 2, "养老机构": 1, "体育场馆": 0.5}),
    "oxygen": (1.0, {"医院": 1}),
    "ride": (1.0, {"游乐场": 4, "景区": 1}),
    "ropeway": (1.0, {"景区": 1}),
    "sightseeing": (0.8, {"景区": 3, "公园": 2, "游乐场": 1}),
}
# which equipment stands in an industrial park: group -> probability
PARK_BOUND = {"vessel": 0.45, "cylinder": 0.2, "lifting": 0.35, "vehicle": 0.4, "piping": 0.3,
              "boiler": 0.2}
PARK_AFFINITY: dict[str, dict[str, float]] = {
    "vessel": {"化工园区": 4}, "piping": {"化工园区": 4}, "cylinder": {"化工园区": 2},
    "vehicle": {"物流园区": 4, "综合保税区": 2}, "lifting": {"物流园区": 1.5, "综合保税区": 1.5},
}

# industry (GB/T 4754 门类) of units by equipment group, when not in a park or venue
FREE_INDUSTRY: dict[str, dict[str, float]] = {
    "elevator": {"K": .60, "L": .07, "F": .05, "H": .03, "Q": .02, "P": .04, "S": .04, "C": .07,
                 "G": .02, "J": .02, "I": .02, "M": .01, "E": .01},
    "vessel": {"C": .66, "D": .10, "Q": .03, "G": .05, "F": .03, "H": .02, "B": .03, "M": .03,
               "E": .02, "A": .03},
    "cylinder": {"D": .55, "C": .30, "H": .10, "Q": .05},
    "lifting": {"C": .62, "E": .18, "G": .12, "F": .03, "D": .05},
    "vehicle": {"C": .55, "G": .30, "F": .10, "A": .05},
    "boiler": {"C": .40, "D": .25, "Q": .05, "P": .08, "H": .05, "K": .07, "S": .05, "O": .05},
    "piping": {"D": .55, "C": .45},
    "ride": {"R": 1.0}, "ropeway": {"N": 1.0},
}
PARK_INDUSTRY = {"C": .78, "G": .12, "D": .05, "F": .03, "M": .02}
VENUE_INDUSTRY = {"商场": "F", "车站": "G", "医院": "Q", "学校": "P", "幼儿园": "P", "景区": "N",
                  "体育场馆": "R", "游乐场": "R", "客运码头": "G", "展览馆": "L", "公园": "N",
                  "机场": "G", "影剧院": "R", "宾馆酒店": "H", "养老机构": "Q"}
UNIT_SIZE = {"K": 9, "C": 5, "G": 4, "D": 4, "L": 4, "F": 4, "H": 4, "Q": 6, "P": 3, "S": 3,
             "J": 3, "I": 3, "M": 2, "E": 4, "A": 2, "B": 3, "N": 3, "R": 3, "O": 2}
VENUE_UNIT_SIZE, PARK_UNIT_SIZE = 15, 6

# ---------------------------------------------------------------- venues and parks
VENUE_MIX = {"学校": .17, "幼儿园": .10, "医院": .11, "商场": .13, "车站": .06, "景区": .09,
             "公园": .08, "宾馆酒店": .08, "体育场馆": .04, "游乐场": .04, "养老机构": .04,
             "影剧院": .03, "展览馆": .015, "客运码头": .01, "机场": .005}
VENUE_RADIUS_M = {"商场": (60, 200), "车站": (80, 280), "医院": (60, 180), "学校": (80, 250),
                  "幼儿园": (25, 60), "景区": (180, 300), "体育场馆": (80, 200),
                  "游乐场": (100, 300), "客运码头": (40, 120), "展览馆": (80, 220),
                  "公园": (100, 300), "机场": (250, 300), "影剧院": (30, 90),
                  "宾馆酒店": (30, 100), "养老机构": (30, 100)}
VISITORS = {"商场": (15000, 2000, 120000), "车站": (12000, 1000, 200000),
            "医院": (5000, 500, 30000), "学校": (2000, 200, 20000), "幼儿园": (300, 60, 1200),
            "景区": (6000, 300, 80000), "体育场馆": (2000, 100, 60000),
            "游乐场": (5000, 500, 60000), "客运码头": (1500, 100, 20000),
            "展览馆": (3000, 200, 50000), "公园": (5000, 300, 60000),
            "机场": (30000, 2000, 150000), "影剧院": (1200, 100, 8000),
            "宾馆酒店": (800, 50, 6000), "养老机构": (250, 30, 1500)}
VENUE_NAMES = {
    "商场": ("{p}购物中心", "{p}商业广场", "{c}百货大楼", "{p}时代广场", "{y}{p}国际商城",
             "{p}天地"),
    "车站": ("{c}汽车站", "{c}汽车客运总站", "{y}{p}站", "{c}站", "{c}公交枢纽站"),
    "医院": ("{C}人民医院", "{C}中医院", "{C}妇幼保健院", "{y}市第{n}人民医院", "{y}市中心医院",
             "{p}医院"),
    "学校": ("{C}第{n}高级中学", "{C}第{n}初级中学", "{C}实验小学", "{p}路小学",
             "{C}职业教育中心", "{y}{p}学院", "{c}外国语学校"),
    "幼儿园": ("{C}实验幼儿园", "{p}幼儿园", "{p}路幼儿园", "{C}第{n}幼儿园"),
    "景区": ("{p}山风景区", "{p}湖风景区", "{p}峡谷景区", "{p}古镇景区", "{c}{p}森林公园",
             "{p}寺景区", "{p}生态旅游区"),
    "体育场馆": ("{c}体育中心", "{c}全民健身中心", "{p}体育馆", "{y}奥林匹克体育中心"),
    "游乐场": ("{p}欢乐世界", "{p}游乐园", "{p}主题乐园", "{c}儿童乐园", "{p}水上乐园"),
    "客运码头": ("{p}客运码头", "{c}{p}渡口", "{p}游船码头"),
    "展览馆": ("{y}国际会展中心", "{C}博物馆", "{p}展览馆", "{C}科技馆"),
    "公园": ("{p}公园", "{c}人民公园", "{p}湿地公园", "{p}植物园", "{c}滨河公园"),
    "机场": ("{y}{c}国际机场", "{y}{p}机场"),
    "影剧院": ("{p}影城", "{c}大剧院", "{p}影剧院", "{c}文化艺术中心"),
    "宾馆酒店": ("{p}大酒店", "{p}宾馆", "{y}{p}国际饭店", "{p}假日酒店"),
    "养老机构": ("{c}社会福利中心", "{p}养老院", "{p}颐养中心", "{c}敬老院"),
}
PARK_MIX = {"经济技术开发区": .12, "高新技术产业开发区": .10, "化工园区": .10, "产业集聚区": .40,
            "物流园区": .10, "综合保税区": .03, "工业园区": .15}
PARK_NAMES = {
    "经济技术开发区": ("{y}经济技术开发区", "{c}经济技术开发区"),
    "高新技术产业开发区": ("{y}高新技术产业开发区", "{c}高新技术产业开发区"),
    "化工园区": ("{c}{d}化工园区", "{y}化学工业园区"),
    "产业集聚区": ("{c}产业集聚区", "{y}{d}产业集聚区", "{c}{d}产业集聚区"),
    "物流园区": ("{y}{d}物流园区", "{y}国际陆港物流园区", "{c}商贸物流园区"),
    "综合保税区": ("{y}综合保税区",),
    "工业园区": ("{c}{d}工业园区", "{c}{i}产业园"),
}
DIRECTIONS = ("东部", "西部", "南部", "北部", "城东", "城西", "城南", "城北", "先进制造业")
PARK_INDUSTRIES = ("装备制造", "新材料", "食品加工", "电子信息", "生物医药", "纺织服装")

# ---------------------------------------------------------------- words
_PLACE_TEXT = ("建设人民文化紫荆花园黄河嵩山东风明珠阳光锦绣世纪凤凰翠竹金桥银河龙湖桃园杏林柳湾"
               "梧桐丹枫青松白鹭滨河沙河清水北湖南湖西山东山太平永安和平幸福光明友谊胜利民主工农"
               "红旗朝阳星光华夏富民兴隆康宁迎宾嘉禾瑞祥福寿百花牡丹荷塘云台石林伏龙盘古青龙白云"
               "天池玉泉金沙银杏松岭枫林月湖星湖鹤鸣凤鸣仙台碧水秀水凌云神农紫云翠屏万福吉祥春晖")
PLACES = tuple(_PLACE_TEXT[i:i + 2] for i in range(0, len(_PLACE_TEXT), 2))
ROAD_SUFFIX = ("路", "路", "路", "大道", "街")
TRADE = tuple("华中宏鑫恒泰金瑞隆源达信盛安通远丰天新众合兴昌博润德正凯旭明鼎辉海宇银祥永佳益立诚"
              "弘晟宁康汇广伟腾")
UNIT_NAMES: dict[str, tuple[str, ...]] = {
    "K": ("{y}{t}物业服务有限公司", "{t}物业管理有限公司", "{c}{t}置业有限公司"),
    "C": ("{c}{t}{m}有限公司", "{y}{t}{m}股份有限公司", "{t}{m}有限责任公司"),
    "G": ("{y}{t}物流有限公司", "{t}运输有限公司", "{c}{t}仓储有限公司", "{t}供应链管理有限公司"),
    "D": ("{y}{t}燃气有限公司", "{c}{t}热力有限公司", "{t}能源有限公司", "{c}水务有限公司"),
    "F": ("{t}商贸有限公司", "{c}{t}超市有限公司", "{y}{t}百货有限公司"),
    "H": ("{t}大酒店有限公司", "{y}{t}酒店管理有限公司", "{c}{t}宾馆"),
    "Q": ("{C}人民医院", "{C}中医院", "{C}妇幼保健院", "{t}医院有限公司"),
    "P": ("{C}第{n}高级中学", "{C}实验学校", "{y}{t}职业技术学院"),
    "S": ("{C}机关事务服务中心", "{C}政务服务中心", "{y}市公安局{c}分局", "{C}人民法院"),
    "L": ("{t}商务服务有限公司", "{y}{t}置业发展有限公司", "{t}实业有限公司"),
    "J": ("{C}农村信用合作联社", "{y}{t}金融服务有限公司"),
    "I": ("{t}信息技术有限公司", "{y}{t}数据科技有限公司"),
    "M": ("{t}检测技术有限公司", "{y}{t}科技研究院有限公司"),
    "E": ("{t}建设集团有限公司", "{c}{t}建筑工程有限公司", "{y}{t}建工集团有限公司"),
    "A": ("{t}农业发展有限公司", "{c}{t}农牧有限公司"),
    "B": ("{t}矿业有限公司", "{c}{t}煤业有限责任公司"),
    "N": ("{p}景区管理有限公司", "{c}{p}文化旅游有限公司"),
    "R": ("{p}游乐有限公司", "{y}{p}文化旅游发展有限公司"),
    "O": ("{t}洗涤服务有限公司", "{c}{t}汽车维修有限公司"),
}
PRODUCTS = ("机械制造", "化工", "食品", "钢铁", "纺织", "建材", "铝业", "电气", "制药",
            "汽车零部件", "耐火材料", "造纸", "化肥", "塑业", "重工", "新材料", "能源", "酿酒",
            "印染", "饲料")
ORDINALS = tuple("一二三四五六七八九十")
SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
                 "袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟"
                 "熊秦邱江尹薛闫段雷侯龙史")
GIVEN = tuple("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚华飞鹏辉玲燕红建国文斌宇浩凯旭东林峰波晨阳"
              "雪梅兰慧颖佳欣怡宁亮志新海涛俊杰博文婷")

HAZARDS: dict[str, tuple[str, ...]] = {  # the first four are the kind a 重大 hazard is
    "3": ("门锁回路短接", "制动器磨损超标", "轿厢意外移动保护装置失效", "安全钳动作不可靠",
          "层门门锁啮合长度不足", "限速器未按期校验", "应急救援电话无人接听", "曳引钢丝绳断丝超标",
          "轿门防夹人保护装置失效", "机房未上锁", "维保记录缺失", "扶手带速度偏差超标",
          "梳齿板缺齿", "平层精度超标"),
    "1": ("低水位联锁保护失效", "安全阀未定期校验", "燃烧器熄火保护失效", "炉墙开裂",
          "水位表损坏", "压力表超期未检定", "排污阀泄漏", "司炉人员无证上岗", "水质不合格结垢严重",
          "锅炉房未设置可燃气体报警装置"),
    "2": ("焊缝存在裂纹", "容器本体腐蚀减薄", "快开门联锁装置失效", "超期未检仍在使用",
          "安全阀超期未校验", "压力表损坏", "爆破片超期未更换", "液位计失灵", "容器基础沉降",
          "操作人员未持证", "气瓶超期未检", "瓶阀泄漏", "气瓶无防倾倒措施", "紧急切断阀失效"),
    "4": ("起升高度限位器失效", "钢丝绳断丝超标", "力矩限制器失效", "主梁下挠超标",
          "吊钩防脱装置缺失", "制动器间隙过大", "轨道接头错位", "防风装置失效", "电气接地不良",
          "操作人员无证作业", "防坠安全器超期未标定"),
    "5": ("制动失灵", "护顶架变形", "货叉裂纹", "轮胎磨损超标", "灯光喇叭失效",
          "未悬挂检验合格标志", "驾驶人员无证驾驶", "安全带缺失", "限速装置失效"),
    "6": ("安全压杠锁紧装置失效", "主轴探伤发现裂纹", "座舱连接螺栓松动", "乘客束缚装置磨损",
          "运行区域防护栏缺损", "应急救援预案未演练", "操作人员无证上岗", "液压系统泄漏",
          "防碰撞缓冲装置损坏"),
    "8": ("燃气管道泄漏", "管道腐蚀减薄", "埋地管道占压", "管道支吊架失效", "安全阀超期未校验",
          "阀门内漏", "管道标识缺失", "穿越段防护不足", "静电跨接缺失"),
    "9": ("抱索器滑移", "钢丝绳断丝", "紧急驱动装置失效", "驱动轮衬垫磨损超标", "站台安全门失效",
          "救护设备不全", "风速仪故障", "托压索轮磨损"),
}

DATE_FORMATS = ("iso", "slash", "zh", "compact", "fullwidth")
DATE_FORMAT_P = (0.72, 0.10, 0.08, 0.07, 0.03)
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
BEIJING = (116.40, 39.91)

# planted bad rows: name -> (rate of equipment rows, ingest reason)
EQUIPMENT_BAD: dict[str, tuple[float, str]] = {
    "missing_registration_code": (0.0006, Reason.MISSING),
    "missing_credit_code": (0.0006, Reason.MISSING),
    "bad_credit_code": (0.0008, Reason.BAD_CREDIT_CODE),
    "unknown_category": (0.0008, Reason.UNKNOWN_CATEGORY),
    "bad_date": (0.0010, Reason.BAD_DATE),
    "coord_range": (0.0005, Reason.COORD_RANGE),
    "outside_region": (0.0006, Reason.OUTSIDE_REGION),
    "ungeocodable_address": (0.0005, Reason.UNGEOCODABLE),
    "duplicate_within_file": (0.0005, Reason.DUPLICATE),
    "duplicate_across_files": (0.0005, Reason.DUPLICATE),
}
FLAG_RATES = {"lonlat_swapped": 0.0008, "address_only": 0.02}


def _zh(kind: Kind) -> dict[str, str]:
    return {f.name: f.zh for f in SCHEMAS[kind]}


# ====================================================================== helpers
def _s(values: object) -> np.ndarray:
    return np.asarray(values, dtype=S)


def _cat(*parts: object) -> np.ndarray:
    """Element-wise concatenation of string arrays and scalars."""
    out = _s(parts[0])
    for p in parts[1:]:
        out = np.strings.add(out, _s(p))
    return out


def _df(columns: dict[str, object]) -> pd.DataFrame:
    """A DataFrame that keeps text as Python objects (no Arrow string inference)."""
    out: dict[str, object] = {}
    for k, v in columns.items():
        a = np.asarray(v)
        if a.dtype.kind in "OUT" or isinstance(a.dtype, np.dtypes.StringDType):
            out[k] = pd.Series(a.astype(object), dtype=object, copy=False)
        else:
            out[k] = a
    return pd.DataFrame(out, copy=False)


def _isin(a: np.ndarray, values: object) -> np.ndarray:
    """Hash-based membership (np.isin sorts, which is slow on text)."""
    return pd.Series(np.asarray(a, dtype=object), dtype=object).isin(list(values)).to_numpy()


def _rank(a: np.ndarray) -> np.ndarray:
    """Dense lexicographic rank of text values (sorted in Arrow, not by Python compares)."""
    arr = pa.array(np.asarray(a, dtype=object), type=pa.string())
    return pc.rank(arr, sort_keys="ascending", tiebreaker="dense").to_numpy()


def _render(templates: tuple[str, ...], choice: np.ndarray, fields: dict[str, np.ndarray]
            ) -> np.ndarray:
    """Fill one of ``templates`` per row (``{name}`` placeholders from ``fields``)."""
    out = np.full(len(choice), "", dtype=S)
    for t, tpl in enumerate(templates):
        m = choice == t
        if not m.any():
            continue
        parts: list[object] = []
        for literal, name, _, _ in string.Formatter().parse(tpl):
            if literal:
                parts.append(literal)
            if name:
                parts.append(fields[name][m])
        out[m] = _cat(*parts) if len(parts) > 1 else _s(parts[0])
    return out


def _pick(rng: np.random.Generator, words: tuple[str, ...], n: int) -> np.ndarray:
    return np.asarray(words, dtype=object)[rng.integers(0, len(words), n)].astype(S)


def _choose(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], dtype=float)
    return np.asarray(keys, dtype=object)[rng.choice(len(keys), n, p=p / p.sum())]


def _dedupe(names: np.ndarray) -> np.ndarray:
    """Make names unique by appending 东区/西区/… (then numbers) to repeats."""
    s = pd.Series(names.astype(object))
    k = s.groupby(s, sort=False).cumcount().to_numpy()
    suffix = np.asarray(["", "（东区）", "（西区）", "（南区）", "（北区）", "（新区）"],
                        dtype=object)
    extra = np.where(k < len(suffix), suffix[np.minimum(k, len(suffix) - 1)],
                     "（" + (k + 1).astype(str).astype(object) + "部）")
    return _cat(names, extra.astype(S)).astype(object)


def _deg(metres: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metres → (degrees of longitude, degrees of latitude) at ``lat``."""
    return metres / (M_PER_DEG * np.cos(np.radians(lat))), metres / M_PER_DEG


def _uniform_in(geoms: np.ndarray, rng: np.random.Generator, rounds: int = 80
                ) -> tuple[np.ndarray, np.ndarray]:
    """One uniform point inside each (prepared) polygon: rejection in its bounding box."""
    b = shapely.bounds(geoms)
    x, y = np.full(len(geoms), np.nan), np.full(len(geoms), np.nan)
    todo = np.arange(len(geoms))
    for _ in range(rounds):
        if not len(todo):
            break
        px = rng.uniform(b[todo, 0], b[todo, 2])
        py = rng.uniform(b[todo, 1], b[todo, 3])
        ok = shapely.contains_xy(geoms[todo], px, py)
        x[todo[ok]], y[todo[ok]] = px[ok], py[ok]
        todo = todo[~ok]
    if len(todo):
        p = shapely.point_on_surface(geoms[todo])
        x[todo], y[todo] = shapely.get_x(p), shapely.get_y(p)
    return x, y


def _near(cx: np.ndarray, cy: np.ndarray, sigma_m: np.ndarray, geoms: np.ndarray,
          rng: np.random.Generator, rounds: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Normal scatter around centres kept inside ``geoms``; the centre when it never is."""
    x, y = cx.astype(float).copy(), cy.astype(float).copy()
    sigma_m = np.broadcast_to(np.asarray(sigma_m, dtype=float), cx.shape)
    todo = np.arange(len(cx))
    for _ in range(rounds):
        if not len(todo):
            break
        nx, ny = rng.normal(0, 1, (2, len(todo))) * sigma_m[todo]
        px = cx[todo] + _deg(nx, cy[todo])[0]
        py = cy[todo] + ny / M_PER_DEG
        ok = shapely.contains_xy(geoms[todo], px, py)
        x[todo[ok]], y[todo[ok]] = px[ok], py[ok]
        todo = todo[~ok]
    return x, y


def _blobs(cx: np.ndarray, cy: np.ndarray, radius_m: np.ndarray, rng: np.random.Generator,
           vertices: int = 10) -> np.ndarray:
    """Irregular convex-ish polygons: jittered star shapes, stretched and rotated."""
    n = len(cx)
    ang = (np.arange(vertices) + rng.uniform(-0.3, 0.3, (n, vertices))) * 2 * np.pi / vertices
    rad = radius_m[:, None] * rng.uniform(0.8, 1.15, (n, vertices))
    aspect = rng.uniform(1.0, 1.7, n)[:, None]
    rot = rng.uniform(0, np.pi, n)[:, None]
    ex, ey = np.cos(ang) * rad * np.sqrt(aspect), np.sin(ang) * rad / np.sqrt(aspect)
    mx, my = ex * np.cos(rot) - ey * np.sin(rot), ex * np.sin(rot) + ey * np.cos(rot)
    dx, dy = _deg(mx, cy[:, None])[0], _deg(my, cy[:, None])[1]
    ring = np.stack([cx[:, None] + dx, cy[:, None] + dy], axis=-1)
    ring = np.round(np.concatenate([ring, ring[:, :1]], axis=1), 7)
    return shapely.polygons(ring)


def _add_months(d: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Calendar month arithmetic on datetime64[D] (day clipped to the month's length)."""
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)
    nm = m + months.astype("timedelta64[M]")
    length = ((nm + 1).astype("datetime64[D]") - nm.astype("datetime64[D]")).astype(np.int64)
    return nm.astype("datetime64[D]") + np.minimum(dom, length - 1).astype("timedelta64[D]")


def _ymd(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    return (y.astype(np.int64) + 1970, (m - y.astype("datetime64[M]")).astype(np.int64) + 1,
            (d - m.astype("datetime64[D]")).astype(np.int64) + 1)


def _fmt_dates(d: np.ndarray, fmt: np.ndarray) -> np.ndarray:
    """Dates as registries write them, one format per row ('' for NaT)."""
    ok = ~np.isnat(d)
    y, m, dd = _ymd(np.where(ok, d, np.datetime64("2000-01-01")))
    ys, ms, ds = y.astype(S), m.astype(S), dd.astype(S)
    out = np.full(len(d), "", dtype=S)
    for k in range(len(DATE_FORMATS)):
        sel = ok & (fmt == k)
        if not sel.any():
            continue
        yk, mk, dk = ys[sel], ms[sel], ds[sel]
        if k == 0:
            out[sel] = _cat(yk, "-", np.strings.zfill(mk, 2), "-", np.strings.zfill(dk, 2))
        elif k == 1:
            out[sel] = _cat(yk, "/", mk, "/", dk)
        elif k == 3:
            out[sel] = _cat(yk, np.strings.zfill(mk, 2), np.strings.zfill(dk, 2))
        else:
            zh = _cat(yk, "年", mk, "月", dk, "日")
            out[sel] = zh if k == 2 else np.strings.translate(zh, FULLWIDTH)
    return out


def _fmt_float(v: np.ndarray, decimals: int = 6) -> np.ndarray:
    return np.where(np.isfinite(v), np.round(np.nan_to_num(v), decimals).astype(S), _s(""))


def _count(n: int, rate: float) -> int:
    """How many rows a rate asks for: at least one, so every kind is always planted."""
    return max(1, round(rate * n))


# ====================================================================== region
@dataclass
class Region:
    """The province's counties (sorted by adcode), their polygons and town centres."""

    adcode: str
    name: str
    counties: pd.DataFrame
    geoms: np.ndarray          # prepared county polygons
    centres: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x, y, sigma_m, cum weight


def _short(names: pd.Series) -> pd.Series:
    stripped = names.str.replace(r"(回族区|自治县|区|县|市)$", "", regex=True)
    return stripped.where(stripped.str.len() >= 2, names)


def load_region(province: str, rng: np.random.Generator) -> Region:
    """Counties, their town centres and weights for one province (name or adcode)."""
    code = province_codes([str(province)])[0]
    gdf = load_boundaries([code])
    prov = gdf[gdf["level"] == "province"]
    cities = gdf[gdf["level"] == "city"].set_index("adcode")["name"]
    c = gdf[gdf["level"] == "county"].sort_values("adcode").reset_index(drop=True)
    counties = pd.DataFrame({
        "adcode": c["adcode"].astype(str), "name": c["name"].astype(str),
        "city_adcode": c["city_adcode"].astype(str),
    })
    counties["city"] = counties["city_adcode"].map(cities).fillna("").astype(str)
    counties.loc[counties["city"] == counties["name"], "city"] = ""
    counties["short"] = _short(counties["name"])
    counties["city_short"] = _short(counties["city"].where(counties["city"] != "",
                                                           counties["name"]))
    counties["district"] = counties["name"].str.endswith("区")
    capital = counties["city_adcode"] == code[:2] + "0100"
    geoms = c.geometry.to_numpy().copy()
    shapely.prepare(geoms)
    lat = shapely.get_y(shapely.centroid(geoms))
    counties["area_km2"] = shapely.area(geoms) * (M_PER_DEG / 1000) ** 2 * np.cos(np.radians(lat))
    district = counties["district"].to_numpy()
    counties["w_urban"] = np.where(district, 10.0, 1.0) * np.where(capital, 2.0, 1.0)
    counties["w_industry"] = np.where(district, 3.0, 1.0) * np.where(capital, 1.5, 1.0)
    seats = representative_points("county", [code]).set_index("adcode").reindex(
        counties["adcode"]).geometry.to_numpy()
    return Region(code, str(prov["name"].iloc[0]), counties, geoms,
                  _town_centres(counties, geoms, seats, rng))


def _town_centres(counties: pd.DataFrame, geoms: np.ndarray, seats: np.ndarray,
                  rng: np.random.Generator, k: int = 4):
    """Per county: the seat (its representative point) and three towns; spreads in metres."""
    nc = len(counties)
    tx, ty = _uniform_in(np.repeat(geoms, k - 1), rng)
    x = np.column_stack([shapely.get_x(seats), tx.reshape(nc, k - 1)])
    y = np.column_stack([shapely.get_y(seats), ty.reshape(nc, k - 1)])
    district = counties["district"].to_numpy()[:, None]
    core = np.clip(0.3 * np.sqrt(counties["area_km2"].to_numpy()) * 1000, 800, 4000)[:, None]
    sigma = np.where(district, np.column_stack([core, np.full((nc, k - 1), 1000.0)]),
                     np.column_stack([np.full((nc, 1), 1500.0), np.full((nc, k - 1), 600.0)]))
    w = np.where(district, [0.55, 0.15, 0.15, 0.15], [0.6, 0.15, 0.15, 0.1])
    return x, y, sigma, np.cumsum(w, axis=1)


def _in_counties(region: Region, county: np.ndarray, rng: np.random.Generator,
                 spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Settlement-like points in the given counties: scatter around the town centres."""
    x, y, sigma, cumw = region.centres
    k = (rng.random(len(county))[:, None] > cumw[county]).sum(axis=1)
    k = np.minimum(k, cumw.shape[1] - 1)
    s = sigma[county, k] * spread * rng.uniform(0.6, 1.4, len(county))
    return _near(x[county, k], y[county, k], s, region.geoms[county], rng)


# ====================================================================== parks and venues
def _polygons_in_counties(region: Region, county: np.ndarray, radius_m: np.ndarray,
                          rng: np.random.Generator, spread: float, uniform: np.ndarray | None
                          = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blob polygons wholly inside their county (re-drawn, then shrunk, until they are)."""
    n = len(county)
    cx, cy, polys = np.zeros(n), np.zeros(n), np.empty(n, dtype=object)
    todo = np.arange(n)
    uniform = np.zeros(n, dtype=bool) if uniform is None else uniform
    for attempt in range(12):
        if not len(todo):
            break
        px, py = _in_counties(region, county[todo], rng, spread)
        ux, uy = _uniform_in(region.geoms[county[todo]], rng)
        u = uniform[todo]
        px, py = np.where(u, ux, px), np.where(u, uy, py)
        shrink = 0.5 ** max(0, attempt - 7)
        p = _blobs(px, py, radius_m[todo] * shrink, rng)
        ok = shapely.contains(region.geoms[county[todo]], p)
        done = todo[ok]
        cx[done], cy[done], polys[done] = px[ok], py[ok], p[ok]
        todo = todo[~ok]
    if len(todo):  # tiny polygons at the county seat, which is far from any border
        x, y, _, _ = region.centres
        cx[todo], cy[todo] = x[county[todo], 0], y[county[todo], 0]
        polys[todo] = _blobs(cx[todo], cy[todo], np.full(len(todo), 30.0), rng)
    return cx, cy, polys


def make_parks(region: Region, rng: np.random.Generator) -> pd.DataFrame:
    """~0.65 parks per county, near town centres, 1–15 km², named like real ones."""
    nc = len(region.counties)
    n = max(8, round(0.65 * nc))
    district = region.counties["district"].to_numpy()
    w = np.where(district, 3.0, 2.0)
    county = np.sort(rng.choice(nc, n, p=w / w.sum()))
    kind = _choose(rng, PARK_MIX, n)
    area = np.exp(rng.uniform(np.log(1.0), np.log(15.0), n))
    radius = np.sqrt(area / np.pi) * 1000 / 1.05
    cx, cy, polys = _polygons_in_counties(region, county, radius, rng, spread=2.5)
    fields = _name_fields(region, county, rng)
    fields["d"] = _pick(rng, DIRECTIONS, n)
    fields["i"] = _pick(rng, PARK_INDUSTRIES, n)
    names = np.full(n, "", dtype=S)
    for k, templates in PARK_NAMES.items():
        m = kind == k
        if m.any():
            choice = rng.integers(0, len(templates), m.sum())
            names[m] = _render(templates, choice, {f: v[m] for f, v in fields.items()})
    adcode = region.counties["adcode"].to_numpy()[county]
    serial = pd.Series(adcode).groupby(adcode).cumcount().to_numpy() + 1
    frame = pd.DataFrame({
        "park_id": _cat("YQ", adcode.astype(S),
                        np.strings.zfill(serial.astype(S), 2)).astype(object),
        "name": _dedupe(names), "kind": kind, "county": county, "x": cx, "y": cy,
        "area_km2": area, "geometry": polys,
    })
    return frame.sort_values("park_id", ignore_index=True)


def make_venues(region: Region, rng: np.random.Generator) -> pd.DataFrame:
    """~6.4 crowded venues per county: mostly in districts, 景区 also in rural counties."""
    nc = len(region.counties)
    total = max(len(VENUE_MIX) * 2, round(6.4 * nc))
    counts = {k: max(1, round(p * total)) for k, p in VENUE_MIX.items()}
    kind = np.repeat(np.asarray(list(counts), dtype=object), list(counts.values()))
    n = len(kind)
    district = region.counties["district"].to_numpy()
    capital = (region.counties["city_adcode"] == region.adcode[:2] + "0100").to_numpy()
    w_city = np.where(district, 8.0, 1.0) * np.where(capital, 1.5, 1.0)
    area = region.counties["area_km2"].to_numpy()
    w_scenic = np.where(district, 1.0, 1.5) * np.sqrt(area)
    scenic = np.isin(kind, ["景区"])
    county = np.where(scenic, rng.choice(nc, n, p=w_scenic / w_scenic.sum()),
                      rng.choice(nc, n, p=w_city / w_city.sum()))
    lo = np.asarray([VENUE_RADIUS_M[k][0] for k in kind], dtype=float)
    hi = np.asarray([VENUE_RADIUS_M[k][1] for k in kind], dtype=float)
    radius = rng.uniform(lo, hi)
    cx, cy, polys = _polygons_in_counties(region, county, radius, rng, spread=0.8,
                                          uniform=scenic & (rng.random(n) < 0.7))
    med = np.asarray([VISITORS[k][0] for k in kind], dtype=float)
    vis = np.clip(med * np.exp(rng.normal(0, 0.6, n)), [VISITORS[k][1] for k in kind],
                  [VISITORS[k][2] for k in kind])
    fields = _name_fields(region, county, rng)
    names = np.full(n, "", dtype=S)
    for k, templates in VENUE_NAMES.items():
        m = kind == k
        if m.any():
            choice = rng.integers(0, len(templates), m.sum())
            names[m] = _render(templates, choice, {f: v[m] for f, v in fields.items()})
    adcode = region.counties["adcode"].to_numpy()[county]
    order = np.lexsort((rng.random(n), adcode))
    kind, county, cx, cy, polys, vis, names, adcode = (
        a[order] for a in (kind, county, cx, cy, polys, vis, names, adcode))
    serial = pd.Series(adcode).groupby(adcode).cumcount().to_numpy() + 1
    return pd.DataFrame({
        "venue_id": _cat("CS", adcode.astype(S),
                         np.strings.zfill(serial.astype(S), 3)).astype(object),
        "name": _dedupe(names), "kind": kind, "daily_visitors": (np.round(vis, -1)).astype(int),
        "county": county, "x": cx, "y": cy, "geometry": polys,
    })


def _name_fields(region: Region, county: np.ndarray, rng: np.random.Generator
                 ) -> dict[str, np.ndarray]:
    n = len(county)
    return {
        "c": region.counties["short"].to_numpy().astype(S)[county],
        "C": region.counties["name"].to_numpy().astype(S)[county],
        "y": region.counties["city_short"].to_numpy().astype(S)[county],
        "p": _pick(rng, PLACES, n), "t": _cat(_pick(rng, TRADE, n), _pick(rng, TRADE, n)),
        "n": _pick(rng, ORDINALS[:6], n), "m": _pick(rng, PRODUCTS, n),
    }


# ====================================================================== equipment and units
def _varieties(catalogue: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """group -> (codes, probabilities), restricted to codes the catalogue has."""
    known = set(catalogue["code"].astype(str))
    out = {}
    for group, (_, weights) in GROUPS.items():
        codes = [c for c in weights if c in known]
        if not codes:
            top = next(iter(weights))[0] + "000"
            codes, p = [top], np.ones(1)
        else:
            p = np.asarray([weights[c] for c in codes], dtype=float)
        out[group] = (np.asarray(codes, dtype=object), p / p.sum())
    return out


def _group_counts(n: int) -> dict[str, int]:
    counts = {g: max(GROUP_MIN.get(g, 0) if n >= 500 else 1, int(share * n))
              for g, (share, _) in GROUPS.items() if g != "elevator"}
    counts = {"elevator": n - sum(counts.values()), **counts}
    return counts


def _venue_choice(venues: pd.DataFrame, weights: dict[str, float], m: int,
                  rng: np.random.Generator) -> np.ndarray:
    w = venues["kind"].map(weights).fillna(0.0).to_numpy() * np.sqrt(venues["daily_visitors"])
    return rng.choice(len(venues), m, p=w / w.sum())


def _park_choice(parks: pd.DataFrame, group: str, m: int, rng: np.random.Generator
                 ) -> np.ndarray:
    affinity = parks["kind"].map(PARK_AFFINITY.get(group, {})).fillna(1.0).to_numpy()
    w = affinity * parks["area_km2"].to_numpy()
    return rng.choice(len(parks), m, p=w / w.sum())


def place_equipment(n: int, region: Region, parks: pd.DataFrame, venues: pd.DataFrame,
                    catalogue: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Category, anchor (county / park / venue), industry and unit of every equipment row."""
    counts = _group_counts(n)
    group = rng.permutation(np.repeat(np.asarray(list(counts), dtype=object),
                                      list(counts.values())))
    code = np.empty(n, dtype=object)
    for g, (codes, p) in _varieties(catalogue).items():
        m = group == g
        code[m] = codes[rng.choice(len(codes), m.sum(), p=p)]
    code = code.astype(str)

    profile = np.where(group == "elevator",
                       np.where(_isin(code, ["3310", "3320"]), "escalator", "elevator"), group)
    profile = np.where(code == "2410", "oxygen", np.where(code == "5200", "sightseeing", profile))
    anchor = np.zeros(n, dtype=np.int8)          # 0 county, 1 park, 2 venue
    anchor_id = np.full(n, -1, dtype=np.int64)
    u = rng.random(n)
    for prof, (prob, weights) in VENUE_BOUND.items():
        m = (profile == prof) & (u < prob)
        if m.any():
            anchor[m], anchor_id[m] = 2, _venue_choice(venues, weights, m.sum(), rng)
    for g, prob in PARK_BOUND.items():
        m = (group == g) & (anchor == 0) & (rng.random(n) < prob)
        if m.any():
            anchor[m], anchor_id[m] = 1, _park_choice(parks, g, m.sum(), rng)

    county = np.zeros(n, dtype=np.int64)
    county[anchor == 2] = venues["county"].to_numpy()[anchor_id[anchor == 2]]
    county[anchor == 1] = parks["county"].to_numpy()[anchor_id[anchor == 1]]
    free = anchor == 0
    urban = free & _isin(group, URBAN_GROUPS)
    for m, col in ((urban, "w_urban"), (free & ~urban, "w_industry")):
        w = region.counties[col].to_numpy()
        county[m] = rng.choice(len(w), m.sum(), p=w / w.sum())
    anchor_id[free] = county[free]

    industry = np.empty(n, dtype=object)
    industry[anchor == 2] = venues["kind"].map(VENUE_INDUSTRY).to_numpy()[anchor_id[anchor == 2]]
    industry[anchor == 1] = _choose(rng, PARK_INDUSTRY, int((anchor == 1).sum()))
    for g, dist in FREE_INDUSTRY.items():
        m = free & (group == g)
        if m.any():
            industry[m] = _choose(rng, dist, m.sum())
    industry = industry.astype(str)

    # units: runs of rows sharing anchor and industry, cut with geometric sizes
    order = np.lexsort((rng.random(n), industry, anchor_id, anchor))
    size = np.where(anchor == 2, VENUE_UNIT_SIZE, np.where(
        anchor == 1, PARK_UNIT_SIZE, pd.Series(industry).map(UNIT_SIZE).fillna(3).to_numpy()))
    so = order
    key_change = np.zeros(n, dtype=bool)
    key_change[0] = True
    for col in (anchor[so], anchor_id[so], industry[so]):
        key_change[1:] |= col[1:] != col[:-1]
    cut = key_change | (rng.random(n) < 1.0 / size[so])
    unit = np.empty(n, dtype=np.int64)
    unit[so] = np.cumsum(cut) - 1
    return _df({"group": group, "code": code, "anchor": anchor, "anchor_id": anchor_id,
                "county": county, "industry": industry, "unit": unit})


def make_units(eq: pd.DataFrame, region: Region, parks: pd.DataFrame, venues: pd.DataFrame,
               rng: np.random.Generator) -> pd.DataFrame:
    """One using unit per unit id: credit code, name, address, location and profile."""
    first = eq.groupby("unit", sort=True).agg(
        anchor=("anchor", "first"), anchor_id=("anchor_id", "first"),
        county=("county", "first"), industry=("industry", "first"), n=("unit", "size"))
    nu = len(first)
    anchor, aid = first["anchor"].to_numpy(), first["anchor_id"].to_numpy()
    county, industry = first["county"].to_numpy(), first["industry"].to_numpy().astype(str)

    x, y = _in_counties(region, county, rng)
    for a, frame in ((1, parks), (2, venues)):
        m = anchor == a
        if m.any():
            x[m], y[m] = _uniform_in(frame["geometry"].to_numpy()[aid[m]], rng)

    fields = _name_fields(region, county, rng)
    names = np.full(nu, "", dtype=S)
    for ind, templates in UNIT_NAMES.items():
        m = industry == ind
        if m.any():
            choice = rng.integers(0, len(templates), m.sum())
            names[m] = _render(templates, choice, {f: v[m] for f, v in fields.items()})
    venue = anchor == 2
    if venue.any():  # the first unit at a venue is the venue itself, later ones its managers
        k = pd.Series(aid[venue]).groupby(aid[venue]).cumcount().to_numpy()
        vname = venues["name"].to_numpy().astype(S)[aid[venue]]
        tail = np.asarray(["", "物业服务中心", "后勤服务中心", "运营管理有限公司"], dtype=object)
        names[venue] = _cat(vname, tail[np.minimum(k, 3)].astype(S))
    names = _dedupe(names)

    c = region.counties
    road = _cat(_pick(rng, PLACES, nu), _pick(rng, ROAD_SUFFIX, nu))
    number = rng.integers(1, 400, nu).astype(S)
    park = anchor == 1
    in_park = np.full(nu, "", dtype=S)
    if park.any():
        in_park[park] = parks["name"].to_numpy().astype(S)[aid[park]]
    address = _cat(region.name, c["city"].to_numpy().astype(S)[county],
                   c["name"].to_numpy().astype(S)[county], in_park, road, number, "号")

    public = np.isin(industry, ["Q", "P", "N"]) & (rng.random(nu) < 0.7)
    prefix = np.where(industry == "S", "11", np.where(public, "12", "91"))
    codes = _credit_codes(prefix, c["adcode"].to_numpy()[county], rng)

    size_idx = rng.choice(4, nu, p=[0.08, 0.25, 0.45, 0.22])
    size_idx = np.clip(size_idx - (first["n"].to_numpy() > 10) - (first["n"].to_numpy() > 30),
                       0, 3)
    score_p = np.asarray([0.02, 0.03, 0.07, 0.18, 0.35, 0.35])
    score = rng.choice(6, nu, p=score_p)
    score = np.where((size_idx == 3) & (rng.random(nu) < 0.4), np.maximum(score - 2, 0), score)
    black = rng.random(nu) < 0.01
    accidents = rng.choice(4, nu, p=[0.975, 0.02, 0.004, 0.001])
    accidents = np.where(black & (accidents == 0) & (rng.random(nu) < 0.6), 1, accidents)
    return _df({
        "credit_code": codes, "name": names, "industry": industry,
        "size": np.asarray(["大型", "中型", "小型", "微型"], dtype=object)[size_idx],
        "address": address.astype(object), "x": x, "y": y, "five_have_score": score,
        "blacklisted": np.where(black, "是", "否"), "accidents_3y": accidents,
        "county": county, "anchor": anchor, "anchor_id": aid,
    })


def _org_codes(n: int, rng: np.random.Generator) -> np.ndarray:
    """GB 11714 organisation codes: 8 characters and their check character."""
    digits = rng.integers(0, 10, (n, 8))
    letters = rng.integers(10, 36, (n, 8))
    use_letter = rng.random((n, 8)) < np.where(rng.random(n) < 0.3, 0.3, 0.0)[:, None]
    vals = np.where(use_letter, letters, digits)
    alpha = np.asarray(list(string.digits + string.ascii_uppercase))
    # GB 32100 does not use I, O, S, V, Z
    vals = np.where(np.isin(alpha[vals], list("IOSVZ")), vals % 10, vals)
    check = 11 - (vals * np.asarray([3, 7, 9, 10, 5, 8, 4, 2])).sum(axis=1) % 11
    check_c = np.where(check == 10, "X", np.where(check == 11, "0", (check % 10).astype(str)))
    body = alpha[vals].astype(object).sum(axis=1)
    return (body + check_c.astype(object)).astype(str)


def _credit_codes(prefix: np.ndarray, adcode: np.ndarray, rng: np.random.Generator
                  ) -> np.ndarray:
    """Unique GB 32100 credit codes: prefix + adcode + organisation code + check."""
    n = len(prefix)
    first17 = _cat(prefix.astype(S), adcode.astype(S), _org_codes(n, rng).astype(S)).astype(object)
    while True:
        dup = pd.Series(first17).duplicated().to_numpy()
        if not dup.any():
            break
        first17[dup] = _cat(prefix[dup].astype(S), adcode[dup].astype(S),
                            _org_codes(int(dup.sum()), rng).astype(S)).astype(object)
    full = with_check_character(pd.Series(first17, dtype="string"))
    return full.to_numpy(dtype=object)


def _fresh_codes(adcode: np.ndarray, existing: np.ndarray, rng: np.random.Generator
                 ) -> np.ndarray:
    """Valid enterprise credit codes that are not among ``existing``."""
    codes = _credit_codes(np.full(len(adcode), "91", dtype=object), adcode, rng)
    clash = _isin(codes, existing)
    while clash.any():
        codes[clash] = _credit_codes(np.full(int(clash.sum()), "91", dtype=object),
                                     adcode[clash], rng)
        clash = _isin(codes, existing) | pd.Series(codes, dtype=object).duplicated().to_numpy()
    return codes


def locate_equipment(eq: pd.DataFrame, units: pd.DataFrame, region: Region,
                     parks: pd.DataFrame, venues: pd.DataFrame, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """True WGS84 positions: inside the venue, near the unit in the park or in town."""
    n = len(eq)
    ux = units["x"].to_numpy()[eq["unit"]]
    uy = units["y"].to_numpy()[eq["unit"]]
    anchor, aid = eq["anchor"].to_numpy(), eq["anchor_id"].to_numpy()
    x, y = ux.copy(), uy.copy()
    m = anchor == 2
    if m.any():
        x[m], y[m] = _uniform_in(venues["geometry"].to_numpy()[aid[m]], rng)
    m = anchor == 1
    if m.any():
        pg = parks["geometry"].to_numpy()[aid[m]]
        shapely.prepare(pg)
        x[m], y[m] = _near(ux[m], uy[m], np.full(m.sum(), 150.0), pg, rng, rounds=3)
    m = anchor == 0
    if m.any():
        sigma = np.where(eq["group"].to_numpy()[m] == "elevator", 60.0, 90.0)
        x[m], y[m] = _near(ux[m], uy[m], sigma, region.geoms[eq["county"].to_numpy()[m]], rng,
                           rounds=3)
    return x[:n], y[:n]


def equipment_dates(eq: pd.DataFrame, rng: np.random.Generator, as_of: np.datetime64
                    ) -> pd.DataFrame:
    """Commissioning, status, last and next inspection consistent with the cycle."""
    n = len(eq)
    as_of_year = int(str(as_of)[:4])
    years = np.arange(1990, as_of_year + 1)
    p = 1.075 ** (years - 1990)
    year = rng.choice(years, n, p=p / p.sum())
    start = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    commissioned = start + rng.integers(0, 365, n).astype("timedelta64[D]")
    commissioned = np.minimum(commissioned, as_of - np.timedelta64(30, "D"))
    age = (as_of - commissioned).astype(np.int64) / 365.25

    group = eq["group"].to_numpy()
    cycle = np.zeros(n, dtype=np.int64)
    for g, (choices, probs) in CYCLES.items():
        m = group == g
        cycle[m] = rng.choice(np.asarray(choices), m.sum(), p=np.asarray(probs))
    yearly = np.zeros(n, dtype=bool)
    for pre in YEARLY_PREFIXES:
        yearly |= np.strings.startswith(eq["code"].to_numpy().astype(S), pre)
    cycle = np.where(yearly, 12, cycle)
    cycle_days = (cycle * 30.44).astype(np.int64)

    u = rng.random(n)
    scrap_p = 0.01 + 0.06 * (age > 20)
    status = np.where(u < scrap_p, "报废", np.where(u < scrap_p + 0.045, "停用", "在用"))
    in_use = status == "在用"

    nxt = as_of + np.ceil(rng.random(n) * cycle_days).astype("timedelta64[D]")
    last = _add_months(nxt, -cycle)
    # a few in-use pieces are past their due date (逾期未检)
    eligible = in_use & (commissioned <= as_of - (cycle_days + 400).astype("timedelta64[D]"))
    p_over = min(1.0, 0.04 * in_use.sum() / max(1, eligible.sum()))
    overdue = eligible & (rng.random(n) < p_over)
    nxt = np.where(overdue, as_of - rng.integers(1, 360, n).astype("timedelta64[D]"), nxt)
    last = np.where(overdue, _add_months(nxt, -cycle), last)
    # stopped and scrapped pieces were last inspected a while ago
    off = ~in_use
    last_off = as_of - rng.integers(200, 1500, n).astype("timedelta64[D]")
    last = np.where(off, last_off, last)
    new = last < commissioned
    last = np.where(new, commissioned, last)
    nxt = np.where(new | off, _add_months(last, cycle), nxt)

    conclusion = _choose(rng, {"合格": .93, "复检合格": .03, "基本合格": .02, "不合格": .02}, n)
    insured = np.full(n, "", dtype=object)
    elev = group == "elevator"
    insured[elev] = np.where(rng.random(elev.sum()) < 0.6, "是", "否")
    crowd = _isin(group, ["ride", "ropeway"])
    insured[crowd] = np.where(rng.random(crowd.sum()) < 0.85, "是", "否")
    other = ~(elev | crowd) & (rng.random(n) < 0.3)
    insured[other] = np.where(rng.random(other.sum()) < 0.2, "是", "否")
    return _df({"commissioned_on": commissioned, "last_inspected_on": last,
                         "next_inspection_due": nxt, "status": status,
                         "inspection_conclusion": conclusion, "insured": insured,
                         "year": year, "cycle": cycle})


def registration_codes(eq: pd.DataFrame, region: Region, year: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
    """20-character 设备代码, and legacy 12-character 注册代码 for some older pieces (the
    adcode's province and city digits in both: no two provinces share a code)."""
    adcode = region.counties["adcode"].to_numpy()[eq["county"].to_numpy()]
    code = eq["code"].to_numpy()
    frame = _df({"c": code, "a": adcode, "y": year})
    serial = frame.groupby(["c", "a", "y"], sort=False).cumcount().to_numpy() + 1
    out = _cat(code.astype(S), adcode.astype(S), year.astype(S),
               np.strings.zfill(serial.astype(S), 6))
    legacy = (year < 2010) & (rng.random(len(eq)) < 0.3)
    if legacy.any():
        top2 = np.strings.slice(code.astype(S), 0, 2)
        city4 = np.strings.slice(adcode.astype(S), 0, 4)
        yy = np.strings.zfill((year % 100).astype(S), 2)
        old = _df({"t": top2[legacy], "c": city4[legacy], "y": yy[legacy]})
        k = old.groupby(["t", "c", "y"], sort=False).cumcount().to_numpy() + 1
        short = _cat(top2[legacy], city4[legacy], yy[legacy], np.strings.zfill(k.astype(S), 4))
        idx = np.flatnonzero(legacy)[k < 10_000]
        out[idx] = short[k < 10_000]
    return out.astype(object)


# ====================================================================== bad rows and files
@dataclass
class Planted:
    """Rows (equipment index) chosen for each planted defect or flag."""

    bad: dict[str, np.ndarray]
    flags: dict[str, np.ndarray]
    dup_pairs: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (kept, duplicate)


def split_files(eq: pd.DataFrame, region: Region, rng: np.random.Generator) -> np.ndarray:
    """File of each row: 0 main CSV, 1 GBK county export (whole rural counties), 2 xlsx."""
    n = len(eq)
    rows_per = np.bincount(eq["county"].to_numpy(), minlength=len(region.counties))
    rural = np.flatnonzero(~region.counties["district"].to_numpy() & (rows_per > 0))
    rural = rng.permutation(rural)
    take = rural[np.cumsum(rows_per[rural]) <= 0.08 * n]
    if not len(take) and len(rural):
        take = rural[:1]
    where = np.zeros(n, dtype=np.int8)
    where[np.isin(eq["county"].to_numpy(), take)] = 1
    share = min(0.05, 10_000 / n)  # 补录 is a small workbook: 5% of rows, at most 10,000
    where[(where == 0) & (rng.random(n) < share / 0.92)] = 2
    return where


def plant(eq: pd.DataFrame, file_of: np.ndarray, order_pos: np.ndarray,
          rng: np.random.Generator) -> Planted:
    """Choose disjoint rows for every defect, flag and duplicate pair (deterministic)."""
    n = len(eq)
    pool = rng.permutation(np.flatnonzero(~_isin(eq["group"].to_numpy(), ["ride", "ropeway"])))
    used = np.zeros(n, dtype=bool)

    def take(k: int, mask: np.ndarray | None = None) -> np.ndarray:
        ok = ~used[pool] if mask is None else ~used[pool] & mask[pool]
        chosen = np.sort(pool[ok][:k])
        used[chosen] = True
        return chosen

    bad = {}
    for name, (rate, _) in EQUIPMENT_BAD.items():
        if name.startswith("duplicate"):
            continue
        bad[name] = take(_count(n, rate))
    # address-only rows: not in parks, whose names (周口经济技术开发区…) confuse geocoders
    flags = {name: take(_count(n, rate),
                        eq["anchor"].to_numpy() != 1 if name == "address_only" else None)
             for name, rate in FLAG_RATES.items()}
    main = file_of == 0
    k = _count(n, EQUIPMENT_BAD["duplicate_within_file"][0])
    a, b = take(k, main), take(k, main)
    k = min(len(a), len(b))
    a, b = a[:k], b[:k]
    first = order_pos[a] < order_pos[b]
    kept, dup = np.where(first, a, b), np.where(first, b, a)
    pairs = {"duplicate_within_file": (kept, dup)}
    k = _count(n, EQUIPMENT_BAD["duplicate_across_files"][0])
    src, dst = take(k, main), take(k, file_of != 0)
    k = min(len(src), len(dst))
    pairs["duplicate_across_files"] = (src[:k], dst[:k])
    for name, (_, d) in pairs.items():
        bad[name] = np.sort(d)
    return Planted(bad, flags, pairs)


def _datum_labels(file_of: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(file_of)
    main = _choose(rng, {"WGS84": .78, "CGCS2000": .08, "GCJ02": .10, "GCJ-02": .02, "BD09": .02},
                   n)
    return np.where(file_of == 1, "BD09", np.where(file_of == 2, "WGS84", main)).astype(object)


def _to_datum(x: np.ndarray, y: np.ndarray, labels: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    out_x, out_y = x.copy(), y.copy()
    gcj = _isin(labels, ["GCJ02", "GCJ-02"])
    bd = labels == "BD09"
    if gcj.any():
        out_x[gcj], out_y[gcj] = wgs84_to_gcj02(x[gcj], y[gcj])
    if bd.any():
        out_x[bd], out_y[bd] = wgs84_to_bd09(x[bd], y[bd])
    return out_x, out_y


Table = dict[str, np.ndarray]


# 使用场所 of equipment outside a venue, by its unit's industry (GB/T 4754 门类); a venue's
# equipment takes the venue's kind, a park's industrial equipment 厂区
PLACE_BY_INDUSTRY = {"K": "住宅", "H": "宾馆", "Q": "医院", "P": "学校", "F": "商场", "C": "工厂",
                     "A": "工厂", "B": "厂区", "D": "厂区", "E": "工地", "G": "仓库", "N": "景区",
                     "R": "游乐场"}
PLACE_BY_VENUE = {"宾馆酒店": "宾馆", "客运码头": "码头"}
USE_PLACE_EMPTY = 0.1  # share of rows that leave 使用场所 empty


def use_places(eq: pd.DataFrame, venue_kind: np.ndarray, rng: np.random.Generator
               ) -> np.ndarray:
    """The registry's 使用场所 of each piece, consistent with where it stands: a venue's kind,
    厂区 in a park, else by its unit's industry (a 房地产 elevator mostly in a 住宅, some in
    an 办公楼); about a tenth left empty."""
    n = len(eq)
    anchor, aid = eq["anchor"].to_numpy(), eq["anchor_id"].to_numpy()
    industry = eq["industry"].to_numpy().astype(str)
    place = pd.Series(industry).map(PLACE_BY_INDUSTRY).fillna("办公楼").to_numpy(dtype=object)
    u = rng.random(n)
    elevator = eq["group"].to_numpy() == "elevator"
    place[elevator & (industry == "K") & (u < 0.15)] = "办公楼"
    place[eq["code"].to_numpy().astype(str) == "4D00"] = "停车场"
    place[(anchor == 1) & ~elevator] = "厂区"
    venue = anchor == 2
    kinds = pd.Series(np.asarray(venue_kind, dtype=object)[aid[venue]])
    place[venue] = kinds.map(PLACE_BY_VENUE).fillna(kinds).to_numpy(dtype=object)
    place[rng.random(n) < USE_PLACE_EMPTY] = ""
    return place


def equipment_table(eq: pd.DataFrame, dates: pd.DataFrame, units: pd.DataFrame,
                    reg: np.ndarray, x: np.ndarray, y: np.ndarray, file_of: np.ndarray,
                    planted: Planted, catalogue: pd.DataFrame, rng: np.random.Generator,
                    venue_kind: np.ndarray | None = None) -> tuple[Table, Table]:
    """Canonical columns with planted defects applied (dates stay datetime64), and the
    text that replaces a date where a bad date is planted (None elsewhere)."""
    n = len(eq)
    code = eq["code"].to_numpy().astype(object)
    names = catalogue.set_index("code")["name"]
    top_names = catalogue[catalogue["level"] == "种类"].set_index("code")["name"]
    uniq, inv = np.unique(code.astype(str), return_inverse=True)
    var_col = names.reindex(uniq).to_numpy(dtype=object)[inv]
    tops = top_codes(pd.Series(uniq, dtype="string")).to_numpy(dtype=object, na_value=None)
    top_col = top_names.reindex(tops).to_numpy(dtype=object)[inv]
    by_name = rng.random(n)
    category = np.where(by_name < 0.02, top_col, np.where(by_name < 0.03, var_col, code))
    unit = eq["unit"].to_numpy()
    labels = _datum_labels(file_of, rng)
    lon, lat = _to_datum(x, y, labels)
    address = units["address"].to_numpy()[unit]
    residential = (eq["industry"].to_numpy() == "K") & (eq["group"].to_numpy() == "elevator")
    building = _cat(rng.integers(1, 30, int(residential.sum())).astype(S), "号楼")
    address[residential] = _cat(address[residential].astype(S), building).astype(object)
    t: Table = {
        "registration_code": reg.astype(object).copy(), "category_code": category,
        "equipment_name": var_col,
        "unit_credit_code": units["credit_code"].to_numpy()[unit],
        "unit_name": units["name"].to_numpy()[unit], "address": address,
        "lon": lon, "lat": lat, "crs": labels,
        "commissioned_on": dates["commissioned_on"].to_numpy(),
        "last_inspected_on": dates["last_inspected_on"].to_numpy(),
        "next_inspection_due": dates["next_inspection_due"].to_numpy(),
        "inspection_conclusion": dates["inspection_conclusion"].to_numpy(),
        "status": dates["status"].to_numpy(), "insured": dates["insured"].to_numpy(),
    }
    if venue_kind is not None:  # its own stream: the other columns stay as they were
        t["use_place"] = use_places(eq, venue_kind, np.random.default_rng(
            rng.bit_generator.seed_seq.spawn(1)[0]))
    b = planted.bad
    t["registration_code"][b["missing_registration_code"]] = ""
    t["unit_credit_code"][b["missing_credit_code"]] = ""
    rows = b["bad_credit_code"]
    bc = t["unit_credit_code"][rows].astype(str)
    last = np.searchsorted(np.asarray(list(ALPHABET)), np.strings.slice(bc, 17, 18))
    wrong = np.asarray(list(ALPHABET))[(last + 1 + rng.integers(0, 29, len(bc))) % 31]
    t["unit_credit_code"][rows] = _cat(np.strings.slice(bc, 0, 17), wrong).astype(object)
    rows = b["unknown_category"]
    t["category_code"][rows] = np.resize(np.asarray(["9999", "电梯X"], dtype=object), len(rows))
    text: Table = {c: np.full(n, None, dtype=object) for c in DATE_COLUMNS}
    rows = b["bad_date"]
    text["commissioned_on"][rows] = np.resize(
        np.asarray(["2021-13-45", "去年", "2019-02-30"], dtype=object), len(rows))
    rows = b["coord_range"]
    t["lon"][rows] = 250.0 + rng.uniform(0, 5, len(rows))
    rows = b["outside_region"]
    t["lon"][rows] = BEIJING[0] + rng.uniform(-0.15, 0.15, len(rows))
    t["lat"][rows] = BEIJING[1] + rng.uniform(-0.08, 0.08, len(rows))
    t["crs"][rows] = "WGS84"
    rows = planted.flags["lonlat_swapped"]
    t["lon"][rows], t["lat"][rows] = t["lat"][rows], t["lon"][rows].copy()
    for rows in (planted.flags["address_only"], b["ungeocodable_address"]):
        t["lon"][rows] = t["lat"][rows] = np.nan
        t["crs"][rows] = ""
    rows = b["ungeocodable_address"]
    t["address"][rows] = np.resize(np.asarray(["某某路88号", "某某街道某某小区3号楼"],
                                              dtype=object), len(rows))
    for kept, dup in planted.dup_pairs.values():
        t["registration_code"][dup] = t["registration_code"][kept]
    return t, text


EQ_COLUMNS = ("registration_code", "category_code", "equipment_name", "unit_credit_code",
              "unit_name", "address", "lon", "lat", "crs", "commissioned_on",
              "last_inspected_on", "next_inspection_due", "inspection_conclusion", "status",
              "insured", "use_place")
DATE_COLUMNS = ("commissioned_on", "last_inspected_on", "next_inspection_due")
COUNTY_HEADERS = {  # what a county system's export calls the columns (schema aliases)
    "registration_code": "设备代码", "category_code": "设备类别", "equipment_name": "设备名称",
    "unit_credit_code": "使用单位统一社会信用代码", "unit_name": "使用单位", "address": "地址",
    "lon": "经度", "lat": "纬度", "crs": "坐标系", "commissioned_on": "投入使用日期",
    "last_inspected_on": "检验日期", "next_inspection_due": "下次检验日期",
    "inspection_conclusion": "检验结论", "status": "状态", "insured": "投保",
    "use_place": "使用场所",
}


def _headers(kind: Kind, columns: tuple[str, ...]) -> list[str]:
    zh = _zh(kind) | {"equipment_name": "设备名称", "check_type": "检查类型"}
    return [zh[c] for c in columns]


def _text_columns(t: Table | pd.DataFrame, columns: tuple[str, ...], dates: tuple[str, ...],
                  rng: np.random.Generator, text: Table | None = None) -> list[pa.Array]:
    """Columns as the strings a CSV holds: mixed date formats, bad-date text, '' for none."""
    out = []
    for c in columns:
        v = np.asarray(t[c])
        if c in dates:
            fmt = rng.choice(len(DATE_FORMATS), len(v), p=DATE_FORMAT_P)
            s = _fmt_dates(v.astype("datetime64[D]"), fmt)
            if text is not None and c in text:
                over = text[c]
                has = np.flatnonzero(pd.notna(over))
                s[has] = over[has].astype(str)
            out.append(pa.array(s, type=pa.string()))
        elif c in ("lon", "lat"):
            out.append(pa.array(_fmt_float(v.astype(float)), type=pa.string()))
        elif v.dtype == object:
            out.append(pa.array(np.where(pd.isna(v), "", v), type=pa.string()))
        else:
            out.append(pa.array(v.astype(S), type=pa.string()))
    return out


def _csv_bytes(columns: list[pa.Array], headers: list[str], encoding: str) -> bytes:
    """RFC 4180 CSV (fields quoted only where they must be), joined in Arrow, not Python."""
    fields = []
    for a in columns:
        need = pc.match_substring_regex(a, '[,"\r\n]')
        if pc.any(need).as_py():
            quoted = pc.binary_join_element_wise('"', pc.replace_substring(a, '"', '""'), '"', "")
            a = pc.if_else(need, quoted, a)
        fields.append(a)
    head = ",".join(headers) + "\n"
    if not fields or not len(fields[0]):
        return head.encode(encoding)
    lines = pc.binary_join_element_wise(*fields, ",")
    lines = pc.binary_join_element_wise(lines, "", "\n")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    lines = lines.cast(pa.large_string())
    _, offsets, data = lines.buffers()
    o = np.frombuffer(offsets, dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
    body = data.to_pybytes()[o[0]:o[-1]]
    if encoding in ("utf-8", "utf-8-sig"):
        return head.encode(encoding) + body
    return (head + body.decode("utf-8")).encode(encoding)


def _write_csv(columns: list[pa.Array], headers: list[str], path: Path, encoding: str
               ) -> None:
    path.write_bytes(_csv_bytes(columns, headers, encoding))


def _write_xlsx(t: Table, text: Table, path: Path, rng: np.random.Generator, as_of: date
                ) -> None:
    """The 补录 workbook: Excel date cells, a few serial numbers and text dates."""
    wb = xlsxwriter.Workbook(str(path), {"in_memory": True, "strings_to_numbers": False,
                                         "strings_to_urls": False,
                                         "default_date_format": "yyyy-mm-dd"})
    wb.set_properties({"title": "设备台账补录", "author": "riskmap demo",
                       "created": datetime(as_of.year, as_of.month, as_of.day)})
    ws = wb.add_worksheet("设备台账")
    ws.write_row(0, 0, _headers(Kind.EQUIPMENT, EQ_COLUMNS), wb.add_format({"bold": True}))
    n = len(t["registration_code"])
    serial_rows = np.sort(rng.choice(n, min(2, n), replace=False))
    for j, c in enumerate(EQ_COLUMNS):
        if c in DATE_COLUMNS:
            d = t[c].astype("datetime64[D]")
            as_text = _fmt_dates(d, rng.choice(len(DATE_FORMATS), n, p=DATE_FORMAT_P))
            cells = pd.Series(pd.to_datetime(d)).dt.to_pydatetime().astype(object)
            col = np.where(rng.random(n) < 0.75, cells, as_text.astype(object))
            if c == "commissioned_on":  # an Excel serial number or two
                serial = (d[serial_rows] - np.datetime64("1899-12-30")).astype(np.int64)
                col[serial_rows] = serial.astype(object)
            over = text[c]
            has = np.flatnonzero(pd.notna(over))
            col[has] = over[has]
            col = np.where(np.isnat(d) & pd.isna(over), None, col)
        elif c in ("lon", "lat"):
            v = np.round(t[c].astype(float), 6)
            col = np.where(np.isfinite(v), v.astype(object), None)
        else:
            col = np.where(pd.isna(t[c]) | (t[c] == ""), None, t[c])
        ws.write_column(1, j, col.tolist())
    ws.set_column(0, 0, 24)
    ws.set_column(3, 5, 30)
    wb.close()


# ====================================================================== hazards, checks, grid
def troubled_areas(x: np.ndarray, y: np.ndarray, group_top: np.ndarray, eligible: np.ndarray,
                   seed: int, areas: int = 3, radius_m: float = 2500.0,
                   adcode: np.ndarray | None = None) -> tuple[np.ndarray, list[dict]]:
    """A regional problem (区域性隐患) to find: around a few equipment sites, pieces of the
    site's category share an elevated rate of serious hazards (e.g. an old estate's
    elevators). Returns a hazard-probability multiplier per piece (1 elsewhere) and the
    areas (centre, category, radius, pieces) for the manifest.

    Drawn from its own generator so the rest of the demo does not shift with it."""
    rng = np.random.default_rng([seed, 4])
    boost = np.ones(len(x))
    found: list[dict] = []
    pool = np.flatnonzero(eligible & np.isin(group_top, np.asarray(["3", "2", "1"], dtype=object)))
    if not len(pool):
        return boost, found
    # centres where the category is dense (an estate, a district), not a lone rural piece
    cell = cells.points_to_cells(x[pool], y[pool], 7).astype(np.int64)
    _, inv, count = np.unique(cell * 4 + (group_top[pool] == "3") + 2 * (group_top[pool] == "2"),
                              return_inverse=True, return_counts=True)
    density = count[inv]
    pool = pool[density >= np.quantile(density, 0.9)]
    for centre in rng.choice(pool, size=min(areas, len(pool)), replace=False):
        dx = (x - x[centre]) * 111_320 * np.cos(np.radians(y[centre]))
        dy = (y - y[centre]) * 110_540
        near = (dx * dx + dy * dy < radius_m ** 2) & (group_top == group_top[centre])
        boost[near] = 8.0  # ~24% of pieces get a hazard there, 70% of them 重大
        found.append({"lon": round(float(x[centre]), 6), "lat": round(float(y[centre]), 6),
                      "top_category": f"{group_top[centre]}000", "radius_m": radius_m,
                      "pieces": int(near.sum())})
        if adcode is not None:  # the counties the area's pieces stand in, and how many
            codes, count = np.unique(np.asarray(adcode, dtype=str)[near], return_counts=True)
            found[-1]["county_adcode"] = str(adcode[centre])
            found[-1]["counties"] = {str(c): int(k) for c, k in zip(codes, count, strict=True)}
    return boost, found


# what a planted troubled county gets: more overdue pieces, slow rectification, or both
TROUBLE_KINDS: dict[str, str] = {
    "overdue": "逾期未检率升高（约为全省的3倍）",
    "late_rectification": "隐患整改迟缓（隐患约为平常的2倍，超过整改期限仍未销号的增多）",
    "overdue+late_rectification": "逾期未检率升高且隐患整改迟缓",
}
TROUBLE_OVERDUE_P = 0.15  # extra chance of an eligible in-use piece being overdue there
TROUBLE_HAZARD_BOOST = 2.0  # where rectification is slow, hazards are found twice as often


def troubled_counties(county: np.ndarray, region: Region, dates: pd.DataFrame,
                      as_of: np.datetime64, seed: int, exclude: np.ndarray | None = None,
                      k: int = 5) -> tuple[pd.DataFrame, np.ndarray, list[dict]]:
    """Troubled counties for the warnings to find (区域性问题): among the larger third of the
    counties by in-use pieces (so that a rate there means something), ``k`` get an elevated
    overdue rate, slow hazard rectification, or both (:data:`TROUBLE_KINDS`, in turn).
    Returns the dates with the extra overdue pieces, a per-piece "slow rectification" flag
    for :func:`make_hazards` and the counties (adcode, name, what was planted) for the
    manifest. Drawn from its own generator so the rest of the demo does not shift."""
    rng = np.random.default_rng([seed, 5])
    n = len(county)
    status = dates["status"].to_numpy()
    in_use = status == "在用"
    sizes = np.bincount(county[in_use], minlength=len(region.counties))
    pool = np.flatnonzero(sizes >= max(1, np.quantile(sizes[sizes > 0], 2 / 3)))
    if exclude is not None:
        pool = pool[~np.isin(pool, exclude)]
    chosen = np.sort(rng.choice(pool, size=min(k, len(pool)), replace=False))
    kinds = np.asarray(list(TROUBLE_KINDS), dtype=object)[np.arange(len(chosen)) % 3]
    over_c = chosen[np.char.find(kinds.astype(str), "overdue") >= 0]
    slow_c = chosen[np.char.find(kinds.astype(str), "late") >= 0]

    cycle = dates["cycle"].to_numpy()
    nxt = dates["next_inspection_due"].to_numpy()
    old = dates["commissioned_on"].to_numpy() <= as_of - (
        (cycle * 30.44).astype(np.int64) + 400).astype("timedelta64[D]")
    u = rng.random(n)
    late_by = rng.integers(1, 360, n).astype("timedelta64[D]")
    extra = np.isin(county, over_c) & in_use & old & (nxt >= as_of) & (u < TROUBLE_OVERDUE_P)
    dates = dates.copy()
    due = np.where(extra, as_of - late_by, nxt)
    dates["next_inspection_due"] = due
    dates["last_inspected_on"] = np.where(extra, _add_months(due, -cycle),
                                          dates["last_inspected_on"].to_numpy())
    counties = region.counties
    found = [{"adcode": str(counties["adcode"].iat[c]), "name": str(counties["name"].iat[c]),
              "planted": str(kind), "what": TROUBLE_KINDS[str(kind)],
              "in_use": int(sizes[c]), "extra_overdue": int((extra & (county == c)).sum())}
             for c, kind in zip(chosen.tolist(), kinds.tolist(), strict=True)]
    return dates, np.isin(county, slow_c), found


def make_hazards(codes: np.ndarray, group_top: np.ndarray, eligible: np.ndarray,
                 dates: pd.DataFrame, rng: np.random.Generator, as_of: np.datetime64,
                 province: str, boost: np.ndarray | None = None,
                 slow: np.ndarray | None = None) -> pd.DataFrame:
    """Hazards on ~4% of equipment: level, closed loop status and dates consistent.
    ``boost`` multiplies the chance of a hazard, and of it being 重大, per piece; on
    ``slow`` pieces hazards are closed far less often (整改迟缓; same draws). Ids are
    :func:`record_ids` of ``province`` (its adcode)."""
    n = len(codes)
    boost = np.ones(n) if boost is None else boost
    overdue = ((dates["status"].to_numpy() == "在用")
               & (dates["next_inspection_due"].to_numpy() < as_of))
    fail = dates["inspection_conclusion"].to_numpy() == "不合格"
    p = np.minimum(0.03 * (1 + 2 * fail + overdue) * boost, 0.9)
    hit = eligible & (rng.random(n) < p)
    if not hit.any():
        hit[rng.choice(np.flatnonzero(eligible))] = True
    idx = np.flatnonzero(hit)
    idx = np.sort(np.concatenate([idx, idx[rng.random(len(idx)) < 0.15]]))
    m = len(idx)
    found = as_of - (730 * rng.random(m) ** 1.3).astype("timedelta64[D]")
    major = rng.random(m) < np.minimum(0.10 * boost[idx], 0.7)
    age = (as_of - found).astype(np.int64)
    u = rng.random(m)
    old = age > 90
    lag = np.zeros(m, dtype=bool) if slow is None else np.asarray(slow, dtype=bool)[idx]
    shut = np.where(lag, np.where(old, 0.25, 0.10), np.where(old, 0.85, 0.40))
    status = np.where(u < shut, "已销号", np.where(
        old & ~lag, np.where(u < 0.95, "整改中", "已登记"),
        np.where(u < shut + (1 - shut) * 2 / 3, "整改中", "已登记")))
    span = np.where(major, rng.integers(60, 181, m), rng.integers(15, 61, m))
    deadline = found + span.astype("timedelta64[D]")
    closed_after = np.minimum(np.ceil(rng.random(m) * (span + 30)).astype(np.int64), age)
    closed = np.where(status == "已销号", found + closed_after.astype("timedelta64[D]"),
                      np.datetime64("NaT"))
    top = group_top[idx]
    desc = np.empty(m, dtype=object)
    for t, words in HAZARDS.items():
        sel = top == t
        if sel.any():  # a 重大 hazard is one of the first four, the grave ones
            hi = np.where(major[sel], 4, len(words))
            desc[sel] = np.asarray(words, dtype=object)[
                (rng.random(sel.sum()) * hi).astype(np.int64)]
    order = np.lexsort((codes[idx].astype(str), found))
    frame = pd.DataFrame({
        "registration_code": codes[idx][order], "found_on": found[order],
        "level": np.where(major, "重大", "一般")[order], "description": desc[order],
        "status": status[order], "deadline": deadline[order], "closed_on": closed[order],
    })
    year = frame["found_on"].dt.year.to_numpy()
    seq = frame.groupby(year).cumcount().to_numpy() + 1
    frame.insert(0, "hazard_id", record_ids("YH", province, year, seq))
    return frame


def record_ids(kind: str, province: str, year: np.ndarray, serial: np.ndarray,
               width: int = 6) -> np.ndarray:
    """Record numbers (隐患编号 ``YH``, 检查编号 ``JC``): the kind, the province's two
    adcode digits, the year and a serial ``width`` digits wide, so that two provinces'
    files never share one (YH41 2024 000001)."""
    return _cat(kind, str(province)[:2], year.astype(S),
                np.strings.zfill(serial.astype(S), width)).astype(object)


def make_officers(x: np.ndarray, y: np.ndarray, county: np.ndarray, region: Region,
                  rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Grid officers: res-8 cells with equipment in res-6 patches, or whole rural counties.

    Returns the officer table and the (cell, county, officer_id) lookup for checks."""
    c8 = cells.points_to_cells(x, y, 8)
    frame = pd.DataFrame({"cell": c8, "county": county}).sort_values(["cell", "county"])
    frame = frame.drop_duplicates("cell", ignore_index=True)
    frame["patch"] = cells.parents(frame["cell"].to_numpy(), 6)
    c = region.counties
    county_mode = (~c["district"].to_numpy()) & (rng.random(len(c)) < 0.5)
    by_county = county_mode[frame["county"].to_numpy()]
    listed = frame[~by_county].copy()
    listed["chunk"] = listed.groupby(["county", "patch"]).cumcount() // 60
    listed["h3"] = cells.to_strings(listed["cell"].to_numpy()).to_numpy()
    patches = (listed.groupby(["county", "patch", "chunk"], sort=True)["h3"]
               .agg(";".join).reset_index())
    counties_needed = np.unique(frame.loc[by_county, "county"].to_numpy())
    n_each = 1 + (rng.random(len(counties_needed)) < 0.3)
    whole = np.repeat(counties_needed, n_each)
    off = pd.concat([
        pd.DataFrame({"county": patches["county"].to_numpy(), "whole": 0,
                      "seq": np.arange(len(patches)), "cells": patches["h3"].to_numpy(),
                      "county_adcode": ""}),
        pd.DataFrame({"county": whole, "whole": 1, "seq": np.arange(len(whole)), "cells": "",
                      "county_adcode": c["adcode"].to_numpy()[whole]}),
    ], ignore_index=True)
    off = off.iloc[np.lexsort((off["seq"], off["whole"], off["county"]))].reset_index(drop=True)
    no = len(off)
    adcode = c["adcode"].to_numpy()[off["county"].to_numpy()]
    serial = off.groupby("county").cumcount().to_numpy() + 1
    off.insert(0, "officer_id", _cat("WG", adcode.astype(S), np.strings.zfill(serial.astype(S), 3))
               .astype(object))
    given = np.where(rng.random(no) < 0.3, _pick(rng, GIVEN, no),
                     _cat(_pick(rng, GIVEN, no), _pick(rng, GIVEN, no)))
    off.insert(1, "name", _cat(_pick(rng, SURNAMES, no), given).astype(object))
    off["phone"] = _cat(_pick(rng, ("13", "15", "18", "17", "19"), no),
                        np.strings.zfill(rng.integers(0, 10**9, no).astype(S), 9)).astype(object)
    off = _staff_whole_counties(off, county, c["adcode"].to_numpy(), len(x))
    off = _split_staffed_counties(off, frame[by_county])
    # which officer owns each listed cell (for the checks)
    listed_off = off[off["whole"] == 0].sort_values("seq")
    patches = patches.assign(officer_id=listed_off["officer_id"].to_numpy())
    cell_owner = listed.merge(patches[["county", "patch", "chunk", "officer_id"]],
                              on=["county", "patch", "chunk"])[["cell", "officer_id"]]
    return off.drop(columns=["county", "whole", "seq"]), cell_owner


#: pieces of equipment one officer of a whole county looks after: about one supervision check
#: a year per piece (the schedule's average), so 100 keep an officer well under the rule file's
#: 200 checks a year (``[capacity] checks_per_officer_year``)
EQUIPMENT_PER_OFFICER = 100


def _staff_whole_counties(off: pd.DataFrame, county: np.ndarray, adcodes: np.ndarray,
                          salt: int) -> pd.DataFrame:
    """Officers added to each whole county whose equipment needs more than were drawn,
    after that county's drawn ones (names and phones from a generator of their own, so the
    rest of the demo draws what it drew before)."""
    whole = off[off["whole"] == 1]
    have = whole.groupby("county").size()
    need = np.ceil(np.bincount(county, minlength=len(adcodes))[have.index.to_numpy()]
                   / EQUIPMENT_PER_OFFICER).astype(np.int64)
    extra = np.maximum(need - have.to_numpy(), 0)
    if not extra.sum():
        return off
    rng = np.random.default_rng([salt, int(extra.sum())])
    k = int(extra.sum())
    where = np.repeat(have.index.to_numpy(), extra)
    serial = np.repeat(have.to_numpy(), extra) + (
        np.arange(k) - np.repeat(np.cumsum(extra) - extra, extra)) + 1
    given = np.where(rng.random(k) < 0.3, _pick(rng, GIVEN, k),
                     _cat(_pick(rng, GIVEN, k), _pick(rng, GIVEN, k)))
    added = pd.DataFrame({
        "officer_id": _cat("WG", adcodes[where].astype(S),
                           np.strings.zfill(serial.astype(S), 3)).astype(object),
        "name": _cat(_pick(rng, SURNAMES, k), given).astype(object),
        "county": where, "whole": 2, "seq": -1, "cells": "",
        "county_adcode": adcodes[where],
        "phone": _cat(_pick(rng, ("13", "15", "18", "17", "19"), k),
                      np.strings.zfill(rng.integers(0, 10**9, k).astype(S), 9)).astype(object)})
    last = off.reset_index(drop=True).groupby("county").cumcount(ascending=False) == 0
    at = pd.Series(np.flatnonzero(last), index=off["county"].to_numpy()[last])
    order = np.r_[np.arange(len(off)), at.reindex(where).to_numpy() + 0.5]
    out = pd.concat([off, added[off.columns]], ignore_index=True)
    return out.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def _split_staffed_counties(off: pd.DataFrame, whole_cells: pd.DataFrame) -> pd.DataFrame:
    """A whole county that was given extra officers (``whole`` 2) is shared out: its cells go
    to its officers in turn, each listing their part, so that every cell has one officer
    (as a grid is drawn) instead of each of them holding the whole county."""
    staffed = np.unique(off.loc[off["whole"] == 2, "county"].to_numpy())
    if not len(staffed):
        return off
    mine = off["county"].isin(staffed).to_numpy() & (off["whole"].to_numpy() > 0)
    crew = off[mine]
    rank = crew.groupby("county").cumcount().to_numpy()
    size = crew.groupby("county")["county"].transform("size").to_numpy()
    cell = whole_cells[whole_cells["county"].isin(staffed)].sort_values(["county", "cell"])
    turn = cell.groupby("county").cumcount().to_numpy() % pd.Series(size, index=crew[
        "county"].to_numpy()).groupby(level=0).first().reindex(cell["county"]).to_numpy()
    parts = (pd.DataFrame({"county": cell["county"].to_numpy(), "turn": turn,
                           "h3": cells.to_strings(cell["cell"].to_numpy()).to_numpy()})
             .groupby(["county", "turn"])["h3"].agg(";".join))
    key = pd.MultiIndex.from_arrays([crew["county"].to_numpy(), rank])
    out = off.copy()
    out.loc[mine, "cells"] = parts.reindex(key).fillna("").to_numpy()
    out.loc[mine, "county_adcode"] = ""  # a county given as well would add all its cells
    out.loc[mine, "whole"] = 1
    return out


def make_checks(units: pd.DataFrame, unit_cell: np.ndarray, officers: pd.DataFrame,
                cell_owner: pd.DataFrame, region: Region, troubled: np.ndarray,
                rng: np.random.Generator, as_of: np.datetime64) -> pd.DataFrame:
    """Supervision checks on a few % of units in the last two years, by their officer."""
    nu = len(units)
    black = units["blacklisted"].to_numpy() == "是"
    p = 0.035 + 0.3 * troubled + 0.3 * black
    chosen = np.flatnonzero(rng.random(nu) < p)
    if not len(chosen):
        chosen = rng.choice(nu, 1)
    times = 1 + (rng.random(len(chosen)) < 0.3) + (rng.random(len(chosen)) < 0.1)
    idx = np.repeat(chosen, times)
    m = len(idx)
    day = as_of - rng.integers(1, 731, m).astype("timedelta64[D]")
    weekday = (day.astype(np.int64) + 3) % 7          # 0 = Monday
    day = day + np.where(weekday >= 5, 7 - weekday, 0).astype("timedelta64[D]")
    day = np.minimum(day, as_of - np.timedelta64(1, "D"))
    bad_unit = troubled[idx] | black[idx]
    u = rng.random(m)
    result = np.where(u < np.where(bad_unit, 0.45, 0.76), "符合",
                      np.where(u < np.where(bad_unit, 0.88, 0.975), "责令整改", "立案调查"))
    # officer: owner of the unit's cell, else one holding the county, else one in the county
    owner = pd.Series(cell_owner["officer_id"].to_numpy(), index=cell_owner["cell"].to_numpy())
    owner = owner[~owner.index.duplicated()]
    officer = pd.Series(unit_cell[idx]).map(owner).to_numpy(dtype=object)
    adcode = region.counties["adcode"].to_numpy()[units["county"].to_numpy()[idx]]
    by_county = (officers.assign(a=officers["officer_id"].str[2:8])
                 .drop_duplicates("a").set_index("a")["officer_id"])
    fallback = pd.Series(adcode).map(by_county).to_numpy(dtype=object)
    officer = np.where(pd.isna(officer), fallback, officer)
    officer = np.where(pd.isna(officer), officers["officer_id"].iloc[0], officer)
    kind = _choose(rng, {"双随机抽查": .5, "专项检查": .25, "日常监督检查": .2, "举报核查": .05}, m)
    order = np.lexsort((units["credit_code"].to_numpy()[idx].astype(str), day))
    frame = pd.DataFrame({
        "credit_code": units["credit_code"].to_numpy()[idx][order], "checked_on": day[order],
        "officer_id": officer[order], "result": result[order], "check_type": kind[order],
    })
    year = frame["checked_on"].dt.year.to_numpy()
    seq = frame.groupby(year).cumcount().to_numpy() + 1
    frame.insert(0, "check_id", record_ids("JC", region.adcode, year, seq))
    return frame


# ====================================================================== writers
def _write_parks(parks: pd.DataFrame, path: Path) -> None:
    """GeoJSON in GCJ-02 (as digitised on AMap), labelled on the collection and features."""
    gcj = transform_geometries(parks["geometry"].to_numpy(), Datum.GCJ02, to_wgs=False)
    gcj = shapely.transform(gcj, lambda c: np.round(c, 6))
    geo = shapely.to_geojson(gcj)
    features = [
        '{"type":"Feature","properties":' + json.dumps(
            {"园区编号": pid, "园区名称": name, "园区类型": kind,
             "面积平方公里": round(float(a), 2), "坐标系": "GCJ02"}, ensure_ascii=False)
        + ',"geometry":' + g + "}"
        for pid, name, kind, a, g in zip(parks["park_id"], parks["name"].astype(str),
                                          parks["kind"], parks["area_km2"], geo, strict=True)
    ]
    head = '{"type":"FeatureCollection","name":"园区","坐标系":"GCJ02","features":[\n'
    path.write_text(head + ",\n".join(features) + "\n]}\n", encoding="utf-8")


def _write_venues(venues: pd.DataFrame, path: Path, as_of: date) -> None:
    """GeoPackage layer 'venues' in CGCS2000 (EPSG:4490), with a fixed GPKG timestamp."""
    gdf = gpd.GeoDataFrame({
        "场所编号": venues["venue_id"].astype(str), "场所名称": venues["name"].astype(str),
        "场所类型": venues["kind"].astype(str), "日均客流": venues["daily_visitors"],
        "坐标系": "CGCS2000",
    }, geometry=gpd.GeoSeries(shapely.transform(venues["geometry"].to_numpy(),
                                                lambda c: np.round(c, 7))), crs=4490)
    if path.exists():
        path.unlink()
    stamp = f"{as_of.isoformat()}T00:00:00Z"
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": stamp})
    try:
        pyogrio.write_dataframe(gdf, path, layer="venues", driver="GPKG")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


# ====================================================================== generate
def generate(province: str = "河南省", equipment: int = 50_000, seed: int = 7,
             out: Path = Path("var/demo"), *, as_of: date = AS_OF) -> dict:
    """Write a demo province's registry exports into ``out``; return the manifest.

    ``province`` is a name or adcode of ``data/boundaries.gpkg`` (河南省/410000,
    陕西省/610000); ``as_of`` is "today" for due dates, hazards and checks."""
    if equipment < 100:
        raise ValueError("equipment must be at least 100")
    rng = np.random.default_rng(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    today = np.datetime64(as_of.isoformat(), "D")
    catalogue = load_catalogue()
    region = load_region(province, rng)
    parks = make_parks(region, rng)
    venues = make_venues(region, rng)
    for frame in (parks, venues):
        shapely.prepare(frame["geometry"].to_numpy())

    eq = place_equipment(equipment, region, parks, venues, catalogue, rng)
    units = make_units(eq, region, parks, venues, rng)
    x, y = locate_equipment(eq, units, region, parks, venues, rng)
    dates = equipment_dates(eq, rng, today)
    dates, slow, troubled_c = troubled_counties(eq["county"].to_numpy(), region, dates, today,
                                                seed)
    reg = registration_codes(eq, region, dates["year"].to_numpy(), rng)

    file_of = split_files(eq, region, rng)
    order, pos = _file_order(eq, region, units, dates, reg, file_of)
    planted = plant(eq, file_of, pos, rng)
    table, text = equipment_table(eq, dates, units, reg, x, y, file_of, planted, catalogue, rng,
                                  venue_kind=venues["kind"].to_numpy())
    _write_equipment(table, text, order, file_of, out, rng, as_of)

    bad_any = np.zeros(equipment, dtype=bool)
    for rows in planted.bad.values():
        bad_any[rows] = True

    unit_rows, unit_bad = _unit_rows(units, rng)
    _write_csv(_text_columns(unit_rows, UNIT_COLUMNS, (), rng),
               _headers(Kind.UNITS, UNIT_COLUMNS), out / FILES["units"], "utf-8")

    # grid officers over the true positions of the good, located rows
    located = ~bad_any
    located[planted.flags["address_only"]] = False
    officers, cell_owner = make_officers(x[located], y[located],
                                         eq["county"].to_numpy()[located], region, rng)
    _write_csv(_text_columns(officers, OFFICER_COLUMNS, (), rng),
               _headers(Kind.OFFICERS, OFFICER_COLUMNS), out / FILES["officers"], "utf-8")

    # hazards on good equipment whose code is not involved in a planted duplicate
    eligible = ~bad_any
    for kept, _ in planted.dup_pairs.values():
        eligible[kept] = False
    top = np.strings.slice(eq["code"].to_numpy().astype(S), 0, 1).astype(object)
    placed = eligible.copy()
    placed[planted.flags["address_only"]] = False
    boost, areas = troubled_areas(x, y, top, placed, seed, adcode=region.counties[
        "adcode"].to_numpy()[eq["county"].to_numpy()])
    boost = boost * np.where(slow, TROUBLE_HAZARD_BOOST, 1.0)
    hazards = make_hazards(reg, top, eligible, dates, rng, today, region.adcode, boost, slow)
    hazards, n_bad_hazards = _with_unknown_equipment(hazards, region, rng)
    _write_csv(_text_columns(hazards, HAZARD_COLUMNS, ("found_on", "deadline", "closed_on"),
                             rng),
               _headers(Kind.HAZARDS, HAZARD_COLUMNS), out / FILES["hazards"], "utf-8")

    open_major = hazards[(hazards["level"] == "重大") & (hazards["status"] != "已销号")]
    unit_of = pd.Series(eq["unit"].to_numpy(), index=reg)
    troubled = np.zeros(len(units), dtype=bool)
    troubled[unit_of.reindex(open_major["registration_code"]).dropna().astype(int)
             .to_numpy()] = True
    unit_cell = cells.points_to_cells(units["x"].to_numpy(), units["y"].to_numpy(), 8)
    checks = make_checks(units, unit_cell, officers, cell_owner, region, troubled, rng, today)
    checks, n_bad_checks = _with_unknown_units(checks, units, region, rng)
    _write_csv(_text_columns(checks, CHECK_COLUMNS, ("checked_on",), rng),
               _headers(Kind.CHECKS, CHECK_COLUMNS), out / FILES["checks"], "utf-8")

    _write_parks(parks, out / FILES["parks"])
    _write_venues(venues, out / FILES["venues"], as_of)

    manifest = _manifest(
        province=region, seed=seed, equipment=equipment, as_of=as_of, eq=eq, dates=dates,
        file_of=file_of, pos=pos, planted=planted, units=units, unit_bad=unit_bad,
        hazards=hazards, n_bad_hazards=n_bad_hazards, checks=checks,
        n_bad_checks=n_bad_checks, officers=officers, parks=parks, venues=venues,
        table=table, today=today)
    manifest["troubled_areas"] = areas  # regional serious hazards the hotspots should find
    # the counties the warnings should find: the planted ones and those of the areas
    manifest["troubled_counties"] = _troubled_list(troubled_c, areas, region)
    (out / "MANIFEST.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1)
                                       + "\n", encoding="utf-8")
    return manifest


EQUIPMENT_FILES = (FILES["equipment"], FILES["county"], FILES["xlsx"])
AREA_COUNTY_SHARE = 0.3  # a county holding this share of a troubled area's pieces is troubled


def _troubled_list(planted: list[dict], areas: list[dict], region: Region) -> list[dict]:
    """The manifest's ``troubled_counties``: the planted counties, then every county holding
    at least :data:`AREA_COUNTY_SHARE` of a troubled area's pieces, once each by adcode."""
    out = {t["adcode"]: dict(t) for t in planted}
    names = dict(zip(region.counties["adcode"], region.counties["name"], strict=True))
    for area in areas:
        for code, pieces in area.get("counties", {}).items():
            if pieces < AREA_COUNTY_SHARE * area["pieces"]:
                continue
            what = (f"区域性严重隐患聚集（{area['top_category']} 类设备，半径"
                    f"{area['radius_m']:.0f}米内{pieces}台）")
            if code in out:
                out[code]["planted"] += "+troubled_area"
                out[code]["what"] += "；" + what
            else:
                out[code] = {"adcode": code, "name": str(names.get(code, "")),
                             "planted": "troubled_area", "what": what}
    return sorted(out.values(), key=lambda t: t["adcode"])


def _file_order(eq: pd.DataFrame, region: Region, units: pd.DataFrame, dates: pd.DataFrame,
                reg: np.ndarray, file_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row order of the equipment files (CSVs by county, unit and code; the workbook by
    commissioning date) and each row's position in its file."""
    adcode = region.counties["adcode"].to_numpy()[eq["county"].to_numpy()]
    unit_code = units["credit_code"].to_numpy()[eq["unit"].to_numpy()]
    day = dates["commissioned_on"].to_numpy().astype("datetime64[D]").astype(np.int64)
    key = np.where(file_of == 2, np.strings.zfill(day.astype(str), 6), adcode)
    order = np.lexsort((_rank(reg), _rank(unit_code), _rank(key), file_of))
    pos = np.empty(len(eq), dtype=np.int64)
    for f in range(len(EQUIPMENT_FILES)):
        sel = order[file_of[order] == f]
        pos[sel] = np.arange(len(sel))
    return order, pos


def _write_equipment(table: Table, text: Table, order: np.ndarray, file_of: np.ndarray,
                     out: Path, rng: np.random.Generator, as_of: date) -> None:
    """The main UTF-8 CSV, the GBK county export (alias headers) and the 补录 workbook."""
    for f, name in enumerate(EQUIPMENT_FILES):
        sel = order[file_of[order] == f]
        part = {c: v[sel] for c, v in table.items()}
        part_text = {c: v[sel] for c, v in text.items()}
        if name.endswith(".xlsx"):
            _write_xlsx(part, part_text, out / name, rng, as_of)
            continue
        columns = _text_columns(part, EQ_COLUMNS, DATE_COLUMNS, rng, part_text)
        if name == FILES["county"]:
            _write_csv(columns, [COUNTY_HEADERS[c] for c in EQ_COLUMNS], out / name, "gbk")
        else:
            _write_csv(columns, _headers(Kind.EQUIPMENT, EQ_COLUMNS), out / name, "utf-8-sig")


def _with_unknown_equipment(hazards: pd.DataFrame, region: Region, rng: np.random.Generator
                            ) -> tuple[pd.DataFrame, int]:
    """Append ~1% hazards naming equipment codes that exist nowhere (year 2099)."""
    k = _count(len(hazards), 0.01)
    bad = hazards.iloc[np.sort(rng.choice(len(hazards), k, replace=len(hazards) < k))].copy()
    src = bad["registration_code"].to_numpy().astype(str)
    variety = np.where(np.strings.str_len(src) == 20, np.strings.slice(src, 0, 4),
                       np.strings.add(np.strings.slice(src, 0, 2), "10"))
    bad["registration_code"] = _cat(
        variety, _pick(rng, tuple(region.counties["adcode"]), k), "2099",
        np.strings.zfill(rng.integers(1, 10**6, k).astype(S), 6)).astype(object)
    bad["hazard_id"] = record_ids("YH", region.adcode, bad["found_on"].dt.year.to_numpy(),
                                  _cat("9", np.strings.zfill(np.arange(1, k + 1).astype(S), 5)))
    return pd.concat([hazards, bad], ignore_index=True), k


def _with_unknown_units(checks: pd.DataFrame, units: pd.DataFrame, region: Region,
                        rng: np.random.Generator) -> tuple[pd.DataFrame, int]:
    """Append ~2% checks of units (valid credit codes) that are not in the unit file."""
    k = _count(len(checks), 0.02)
    bad = checks.iloc[np.sort(rng.choice(len(checks), k, replace=len(checks) < k))].copy()
    bad["credit_code"] = _fresh_codes(_pick(rng, tuple(region.counties["adcode"]), k),
                                      units["credit_code"].to_numpy(), rng)
    bad["check_id"] = record_ids("JC", region.adcode, bad["checked_on"].dt.year.to_numpy(),
                                 _cat("9", np.strings.zfill(np.arange(1, k + 1).astype(S), 5)))
    return pd.concat([checks, bad], ignore_index=True), k


UNIT_COLUMNS = ("credit_code", "name", "industry", "size", "address", "lon", "lat", "crs",
                "five_have_score", "blacklisted", "accidents_3y")
HAZARD_COLUMNS = ("hazard_id", "registration_code", "found_on", "level", "description",
                  "status", "deadline", "closed_on")
CHECK_COLUMNS = ("check_id", "credit_code", "checked_on", "officer_id", "result", "check_type")
OFFICER_COLUMNS = ("officer_id", "name", "cells", "county_adcode", "phone")


def _unit_rows(units: pd.DataFrame, rng: np.random.Generator
               ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Units as exported (WGS84 / CGCS2000 labels) plus unreferenced bad rows."""
    nu = len(units)
    t = _df({
        "credit_code": units["credit_code"].to_numpy().astype(object),
        "name": units["name"].to_numpy(),
        "industry": units["industry"], "size": units["size"],
        "address": units["address"].to_numpy(),
        "lon": units["x"].to_numpy(), "lat": units["y"].to_numpy(),
        "crs": np.where(rng.random(nu) < 0.1, "CGCS2000", "WGS84").astype(object),
        "five_have_score": units["five_have_score"].astype(str),
        "blacklisted": units["blacklisted"], "accidents_3y": units["accidents_3y"].astype(str),
    })
    k_bad, k_missing = _count(nu, 0.002), _count(nu, 0.001)
    extra = t.iloc[rng.choice(nu, k_bad + k_missing)].copy()
    fresh = _fresh_codes(extra["credit_code"].str[2:8].to_numpy(), t["credit_code"].to_numpy(),
                         rng)
    last = np.asarray([ALPHABET.index(c[-1]) for c in fresh[:k_bad]], dtype=np.int64)
    wrong = np.asarray(list(ALPHABET))[(last + 7) % 31]
    fresh[:k_bad] = (np.strings.slice(fresh[:k_bad].astype(S), 0, 17)
                     + wrong.astype(S)).astype(object)
    extra["credit_code"] = fresh.astype(object)
    extra["name"] = np.where(np.arange(len(extra)) < k_bad, _cat(
        extra["name"].to_numpy().astype(S), "（分公司）").astype(object), "")
    rows = pd.concat([t, extra], ignore_index=True)
    order = np.lexsort((np.arange(len(rows)), rows["credit_code"].to_numpy().astype(str)))
    rows = rows.iloc[order].reset_index(drop=True)
    pos = np.empty(len(rows), dtype=np.int64)
    pos[order] = np.arange(len(rows))
    bad = {"unit_bad_credit_code": np.sort(pos[nu:nu + k_bad]) + 2,
           "unit_missing_name": np.sort(pos[nu + k_bad:]) + 2}
    return rows, bad


def _rows_of(idx: np.ndarray, file_of: np.ndarray, pos: np.ndarray) -> dict[str, list[int]]:
    """Equipment indices → {file name: sorted spreadsheet row numbers (header is row 1)}."""
    out: dict[str, list[int]] = {}
    for f, name in enumerate(EQUIPMENT_FILES):
        sel = idx[file_of[idx] == f]
        if len(sel):
            out[name] = sorted((pos[sel] + 2).tolist())
    return out


def _tail_rows(total: int, k: int) -> list[int]:
    """Spreadsheet row numbers of the last ``k`` rows of a file with ``total`` data rows."""
    return list(range(total - k + 2, total + 2))


def _manifest(*, province: Region, seed: int, equipment: int, as_of: date, eq: pd.DataFrame,
              dates: pd.DataFrame, file_of: np.ndarray, pos: np.ndarray, planted: Planted,
              units: pd.DataFrame, unit_bad: dict[str, np.ndarray],
              hazards: pd.DataFrame, n_bad_hazards: int, checks: pd.DataFrame,
              n_bad_checks: int, officers: pd.DataFrame, parks: pd.DataFrame,
              venues: pd.DataFrame, table: Table, today: np.datetime64) -> dict:
    """What was written: files and counts, every planted bad row and flag by file row."""
    good = np.ones(equipment, dtype=bool)
    for rows in planted.bad.values():
        good[rows] = False
    status = dates["status"].to_numpy()
    overdue = good & (status == "在用") & (dates["next_inspection_due"].to_numpy() < today)
    files: dict[str, dict] = {}
    for f, (name, encoding, datum) in enumerate(zip(
            EQUIPMENT_FILES, ("utf-8-sig", "gbk", "xlsx"),
            ("mixed (坐标系 column: WGS84/CGCS2000/GCJ02/BD09)", "BD09", "WGS84"), strict=True)):
        sel = file_of == f
        files[name] = {"kind": "equipment", "rows": int(sel.sum()),
                       "bad_rows": int((~good & sel).sum()), "encoding": encoding,
                       "datum": datum}
    n_unit_bad = sum(len(v) for v in unit_bad.values())
    files[FILES["units"]] = {"kind": "units", "rows": len(units) + n_unit_bad,
                             "bad_rows": n_unit_bad, "encoding": "utf-8"}
    files[FILES["hazards"]] = {"kind": "hazards", "rows": len(hazards),
                               "bad_rows": n_bad_hazards, "encoding": "utf-8"}
    files[FILES["checks"]] = {"kind": "checks", "rows": len(checks),
                              "bad_rows": n_bad_checks, "encoding": "utf-8"}
    files[FILES["officers"]] = {"kind": "officers", "rows": len(officers), "bad_rows": 0,
                                "encoding": "utf-8"}
    files[FILES["parks"]] = {"kind": "parks", "rows": len(parks), "bad_rows": 0,
                             "datum": "GCJ02"}
    files[FILES["venues"]] = {"kind": "venues", "rows": len(venues), "bad_rows": 0,
                              "layer": "venues", "datum": "CGCS2000 (EPSG:4490)"}

    bad_rows = {name: {"kind": "equipment", "reason": str(EQUIPMENT_BAD[name][1]),
                       "count": len(rows), "rows": _rows_of(rows, file_of, pos)}
                for name, rows in planted.bad.items()}
    for name, rows in unit_bad.items():
        reason = Reason.BAD_CREDIT_CODE if "credit" in name else Reason.MISSING
        bad_rows[name] = {"kind": "units", "reason": str(reason), "count": len(rows),
                          "rows": {FILES["units"]: rows.tolist()}}
    bad_rows["hazard_unknown_equipment"] = {
        "kind": "hazards", "reason": str(Reason.UNKNOWN_EQUIPMENT), "count": n_bad_hazards,
        "rows": {FILES["hazards"]: _tail_rows(len(hazards), n_bad_hazards)}}
    bad_rows["check_unknown_unit"] = {
        "kind": "checks", "reason": str(Reason.UNKNOWN_UNIT), "count": n_bad_checks,
        "rows": {FILES["checks"]: _tail_rows(len(checks), n_bad_checks)}}
    flags = {name: {"reason": str(reason), "count": len(planted.flags[name]),
                    "rows": _rows_of(planted.flags[name], file_of, pos)}
             for name, reason in (("lonlat_swapped", Flag.LONLAT_SWAPPED),
                                  ("address_only", Flag.GEOCODED_COUNTY))}
    duplicates = {
        name: [{"kept": [EQUIPMENT_FILES[file_of[k]], int(pos[k] + 2)],
                "duplicate": [EQUIPMENT_FILES[file_of[d]], int(pos[d] + 2)]}
               for k, d in zip(kept.tolist(), dup.tolist(), strict=True)]
        for name, (kept, dup) in planted.dup_pairs.items()}
    top = top_codes(pd.Series(eq["code"].to_numpy().astype(str), dtype="string")).to_numpy(
        dtype=object)
    groups = pd.Series(top[good]).value_counts().sort_index()
    labels = pd.Series(table["crs"][good]).replace("", "none").value_counts().sort_index()
    return {
        "seed": seed, "as_of": as_of.isoformat(),
        "province": {"adcode": province.adcode, "name": province.name},
        "equipment": equipment,
        "files": files,
        "counts": {
            "equipment_rows": equipment, "equipment_good": int(good.sum()),
            "equipment_bad": int((~good).sum()), "units": len(units),
            "hazards": len(hazards) - n_bad_hazards, "checks": len(checks) - n_bad_checks,
            "officers": len(officers),
            "officers_by_county": int((officers["county_adcode"] != "").sum()),
            "parks": len(parks), "venues": len(venues),
            "overdue_in_use": int(overdue.sum()),
            "in_use": int((good & (status == "在用")).sum()),
        },
        "categories_good": {str(k): int(v) for k, v in groups.items()},
        "datums_good": {str(k): int(v) for k, v in labels.items()},
        "bad_rows": bad_rows,
        "flags": flags,
        "duplicates": duplicates,
        "registration_code_format": (
            "20 characters: variety code (4) + county adcode (6) + commissioning year (4) + "
            "serial (6); legacy 12 characters for ~30% of pre-2010 pieces: variety code[:2] + "
            "province and city digits of the adcode (4) + year (2) + serial (4)"),
        "record_id_format": (
            "隐患编号 YH and 检查编号 JC + the province's two adcode digits + year (4) + "
            "serial (6; rows naming unknown equipment or units: 9 + serial (5))"),
        "notes": {
            "row numbers": "spreadsheet rows: the header is row 1, the first data row is row 2",
            "duplicates": "the kept row is read first when files are ingested main → county "
                          "export → xlsx; the other is the planted duplicate",
        },
    }
